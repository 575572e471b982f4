"""REST: taught words (/api/concepts) and relevance feedback (more_like / less_like on every search)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_teach_search_list_forget(client: TestClient, ids: dict[str, int]) -> None:
    r = client.post("/api/concepts", json={"word": "Kitties", "examples": [ids["chelsea"]],
                                           "counter_examples": [ids["puppy"]]})
    assert r.status_code == 200, r.text
    c = r.json()["concept"]
    assert c["word"] == "kitties" and len(c["examples"]) == 1 and len(c["counter_examples"]) == 1
    r = client.post("/api/concepts", json={"word": "kitties", "examples": [ids["black_cat"]]})  # adds
    assert len(r.json()["concept"]["examples"]) == 2
    found = client.get("/api/search", params={"q": "kitties", "limit": 3}).json()
    assert {x["id"] for x in found["results"][:2]} == {ids["chelsea"], ids["black_cat"]}
    assert all(0 <= x["score"] <= 1 for x in found["results"])
    assert found["explain"]["terms"]["concept:kitties"]["taught"]
    assert [c["word"] for c in client.get("/api/concepts").json()["concepts"]] == ["kitties"]
    assert client.delete("/api/concepts/kitties").json() == {"forgotten": "kitties"}
    r = client.delete("/api/concepts/kitties")
    assert r.status_code == 404 and r.json()["error"].startswith("no taught word")


def test_bad_teaching_is_one_clear_error(client: TestClient, ids: dict[str, int]) -> None:
    for body, status in (({"word": "x", "examples": [10**12]}, 404), ({"word": "x"}, 400),
                         ({"word": "x", "counter_examples": [ids["puppy"]]}, 400),
                         ({"word": "", "examples": [ids["puppy"]]}, 422),
                         ({"word": "x", "examples": ["/etc/passwd"]}, 422)):
        r = client.post("/api/concepts", json=body)
        assert r.status_code == status, (body, r.text)
        assert isinstance(r.json()["error"], str) and "\n" not in r.json()["error"]


def test_relevance_feedback_on_search(client: TestClient, ids: dict[str, int]) -> None:
    plain = client.get("/api/search", params={"id": ids["chelsea"], "limit": 5}).json()["results"]
    second = plain[1]["id"]
    fed = client.get("/api/search", params={"id": ids["chelsea"], "limit": 5, "less_like": [second]}).json()
    assert second not in [x["id"] for x in fed["results"]] and fed["explain"]["feedback"]["less_like"] == [second]
    alone = client.get("/api/search", params={"more_like": [ids["chelsea"], ids["black_cat"]], "limit": 2}).json()
    assert alone["kind"] == "feedback" and {x["id"] for x in alone["results"]} == {ids["chelsea"], ids["black_cat"]}
    assert client.get("/api/search", params={"limit": 2}).status_code == 400


def test_a_word_that_is_not_utf8_is_refused(client, ids) -> None:  # type: ignore[no-untyped-def]
    """JSON may carry a lone surrogate (\\udcff), which no store can bind: one JSON error (the request model
    refuses it; errors.explain_failure would make a 400 of it past the model), not a 500."""
    r = client.post("/api/concepts", content=b'{"word": "rex\\udcff", "examples": [%d]}' % ids["chelsea"],
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "unicode" in r.json()["error"], r.text
    assert "rex" not in [c["word"] for c in client.get("/api/concepts").json()["concepts"]]
