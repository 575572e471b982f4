"""The API the web page lives on: paging of every search, an image's details, "find copies", duplicates with
the reason their best copy won, and the trash actions with undo (server/browse.py, lookalike/trash.py)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from lookalike.samples import copy_samples
from lookalike.server.app import create_app


def test_search_pages(client: TestClient, ids: dict[str, int]) -> None:
    whole = client.get("/api/search", params={"id": ids["puppy"], "limit": 9}).json()
    assert len(whole["results"]) == 9
    first = client.get("/api/search", params={"id": ids["puppy"], "limit": 4}).json()
    assert first["offset"] == 0 and first["next_offset"] == 4
    second = client.get("/api/search", params={"id": ids["puppy"], "limit": 4, "offset": 4}).json()
    assert [r["id"] for r in first["results"] + second["results"]] == [r["id"] for r in whole["results"][:8]]
    last = client.get("/api/search", params={"id": ids["puppy"], "limit": 20, "offset": 8}).json()
    assert len(last["results"]) == 11 - 8 and last["next_offset"] is None  # 11 photos in the library
    assert client.get("/api/search", params={"q": "cat", "offset": -1}).status_code == 422


def test_image_details_and_copies(client: TestClient, ids: dict[str, int]) -> None:
    d = client.get(f"/api/images/{ids['chelsea']}").json()
    assert d["faces"] == [] and d["width"] == 451 and d["tags"] and "caption" in d["texts"]
    copies = client.get(f"/api/images/{ids['chelsea']}/copies").json()
    # no copy of chelsea in the library: only the photo itself scores above the copy threshold
    assert [r["id"] for r in copies["results"]] == [ids["chelsea"]] and copies["copy_threshold"] > 0.9


def test_dupes_remove_and_undo(fresh_library, tmp_path: Path, private_trash: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "pics"
    copy_samples(folder, ["coffee", "guitar", "rocket"])
    shutil.copyfile(folder / "coffee.jpg", folder / "coffee-copy.jpg")
    with Image.open(folder / "guitar.jpg") as im:
        im.resize((im.width // 2, im.height // 2)).save(folder / "guitar-small.jpg", quality=85)
    lib = fresh_library()
    lib.index([folder])
    client = TestClient(create_app(lib))
    groups = client.get("/api/dupes").json()["groups"]
    assert len(groups) == 2
    why = {g["items"][0]["name"]: g["why_best"] for g in groups}
    assert why["guitar.jpg"].startswith("most pixels")
    assert why["coffee.jpg"] in ("oldest file", "same pixels, date and size: the first by name")
    body = {"groups": [{"keep": g["items"][0]["id"], "remove": [i["id"] for i in g["items"][1:]]} for g in groups]}
    action = client.post("/api/dupes/remove", json=body).json()
    assert action["moved"] == 2 and action["how"] == "trash"
    assert sorted(p.name for p in folder.iterdir()) == ["coffee.jpg", "guitar.jpg", "rocket.jpg"]
    assert sorted(p.name for p in (private_trash / "files").iterdir()) == ["coffee-copy.jpg", "guitar-small.jpg"]
    assert client.get("/api/stats").json()["images"] == 3
    assert client.get("/api/dupes").json()["groups"] == []
    logged = client.get("/api/dupes/actions").json()["actions"]
    assert logged[0]["id"] == action["id"] and not logged[0]["undone"]
    # the copy to keep must still be there, or nothing of its group moves
    (folder / "rocket.jpg").unlink()
    rocket = lib.store.get_by_path(str(folder / "rocket.jpg")).id
    res = client.post("/api/dupes/remove", json={"groups": [{"keep": rocket, "remove": [groups[0]["items"][0]["id"]]}]})
    assert res.status_code == 404 and "nothing was moved" in res.json()["error"]
    coffee = groups[0]["items"][0]["id"]
    for remove, status, said in (([424242], 404, "no indexed image with id 424242"),  # were a silent 200
                                 ([coffee], 400, "both a copy to keep and one to move"),
                                 ([True], 422, ""), ([float(coffee)], 422, ""), ([-1], 422, ""), ([0], 422, ""),
                                 ([2**63], 422, "")):  # a traceback in the server's log before
        res = client.post("/api/dupes/remove", json={"groups": [{"keep": coffee, "remove": remove}]})
        assert res.status_code == status and said in res.json()["error"], (remove, res.text)
    res = client.post("/api/dupes/remove", json={"groups": [{"keep": coffee, "remove": [rocket]},
                                                            {"keep": rocket, "remove": [coffee]}]})
    assert res.status_code == 400 and "both a copy to keep and one to move" in res.json()["error"]
    assert sorted(p.name for p in folder.iterdir()) == ["coffee.jpg", "guitar.jpg"]  # nothing moved
    undone = client.post("/api/dupes/undo", json={}).json()
    assert [f["done"] for f in undone["files"]] == ["restored", "restored"]
    assert (folder / "coffee-copy.jpg").is_file() and (folder / "guitar-small.jpg").is_file()
    assert len(client.get("/api/dupes").json()["groups"]) == 2
    assert client.post("/api/dupes/undo", json={"action": action["id"]}).status_code == 400  # already undone
    assert client.post("/api/dupes/undo", json={"action": "nope"}).status_code == 404


def test_browse_pages_newest_first(client: TestClient, library) -> None:  # type: ignore[no-untyped-def]
    whole = client.get("/api/browse", params={"limit": 50}).json()
    assert whole["total"] == 11 and len(whole["results"]) == 11 and whole["next_offset"] is None
    infos = {i.id: i for i in library.store.get([r["id"] for r in whole["results"]])}
    # to the second as both stores make it: the mtime floored (tests/stores/test_store_contract.py)
    times = [infos[r["id"]].taken_at or math.floor(infos[r["id"]].mtime) for r in whole["results"]]
    assert times == sorted(times, reverse=True) and whole["results"][0]["thumb"].endswith("/thumb")
    page = client.get("/api/browse", params={"limit": 4, "offset": 4}).json()
    assert [r["id"] for r in page["results"]] == [r["id"] for r in whole["results"][4:8]] and page["next_offset"] == 8
    pets = client.get("/api/browse", params={"folder": str(next(iter(infos.values())).folder)}).json()
    assert 0 < pets["total"] < 11
    assert client.get("/api/browse", params={"after": "yesterday"}).status_code == 422


def test_dupes_to_a_quarantine_folder(fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    folder = tmp_path / "pics"
    copy_samples(folder, ["coffee"])
    shutil.copyfile(folder / "coffee.jpg", folder / "coffee-copy.jpg")
    lib = fresh_library()
    lib.index([folder])
    q = tmp_path / "quarantine"
    client = TestClient(create_app(lib, replace(lib.settings, quarantine=str(q))))
    assert client.get("/api/dupes/actions").json()["moves_to"] == str(q)
    g = client.get("/api/dupes").json()["groups"][0]
    action = client.post("/api/dupes/remove", json={"groups": [{"keep": g["items"][0]["id"],
                                                               "remove": [g["items"][1]["id"]]}]}).json()
    assert action["how"] == "quarantine" and [p.name for p in q.iterdir()] == ["coffee-copy.jpg"]
    assert client.post("/api/dupes/undo", json={}).json()["files"][0]["done"] == "restored"
    assert (folder / "coffee-copy.jpg").is_file() and not list(q.iterdir())
