"""REST: GET /api/people, GET /api/people/{id}, POST /api/people/{id}/name (merge), POST
/api/images/{id}/faces/{n}/name (split), a face's JPEG; the token guards them like every other route."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike.config import Settings
from lookalike.library import Library
from lookalike.server.app import create_app


@pytest.fixture
def client(people_index: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    shutil.copytree(people_index, tmp_path / "lib")
    lib = Library(settings=replace(Settings.from_env({}, library=tmp_path / "lib"), token="s3cret"))
    with TestClient(create_app(lib), headers={"Authorization": "Bearer s3cret"}) as c:
        yield c
    lib.close()


def test_people_listed_named_merged_and_split(client: TestClient) -> None:
    people = client.get("/api/people").json()["people"]
    assert [p["faces"] for p in people] == [5, 5, 5]
    face = client.get(people[0]["sample"]["url"])
    assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(face.content)) as im:
        assert max(im.size) <= 160 and min(im.size) > 40
    a, b = people[0]["id"], people[1]["id"]
    r = client.post(f"/api/people/{a}/name", json={"name": "Alice"})
    assert r.status_code == 200 and r.json()["person"]["name"] == "Alice"
    res = client.get("/api/search", params={"q": "alice"}).json()
    assert len(res["results"]) == 5 and all(0 <= x["score"] <= 1 for x in res["results"])
    assert client.post(f"/api/people/{b}/name", json={"name": "alice"}).json()["person"]["faces"] == 10  # merged
    faces = client.get(f"/api/people/{a}").json()["faces"]
    assert len(faces) == 10
    f = faces[-1]
    moved = client.post(f"/api/images/{f['image_id']}/faces/{f['index']}/name", json={"name": "Bob"}).json()
    assert moved["person"]["name"] == "Bob" and moved["person"]["faces"] == 1
    assert len(client.get("/api/search", params={"q": "alice"}).json()["results"]) == 9
    here = client.get(f"/api/images/{f['image_id']}/people").json()["faces"]
    assert [(x["index"], x["name"], x["person"]) for x in here] == [(f["index"], "Bob", moved["person"]["id"])]
    assert client.get("/api/images/999999/people").status_code == 404


def test_errors_and_token(client: TestClient) -> None:
    pid = client.get("/api/people").json()["people"][0]["id"]
    r = client.post(f"/api/people/{pid}/name", json={"name": ""})
    assert r.status_code == 422 and "error" in r.json()
    r = client.post(f"/api/people/{pid}/name", json={"name": "123"})
    assert r.status_code == 400 and "needs a letter" in r.json()["error"]
    assert client.post("/api/people/999999/name", json={"name": "Zed"}).status_code == 404
    assert client.get("/api/images/999999/faces/0").status_code == 404
    bare = TestClient(client.app)
    assert bare.get("/api/people").status_code == 401
    assert bare.post(f"/api/people/{pid}/name", json={"name": "Eve"}).status_code == 401
