"""Notebook display (lookalike/notebook.py) on a real indexed library, and docs/notebook.ipynb run end to end
by a real Jupyter kernel (nbclient + ipykernel), its outputs checked."""

from __future__ import annotations

import ast
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.notebook import MAX_THUMBS, render_html

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebook.ipynb"


def test_search_result_renders_thumbnails_scores_and_tags(indexed) -> None:  # type: ignore[no-untyped-def]
    res = indexed.search("cat", limit=3)
    page = res._repr_html_()
    assert page.count('<img src="data:image/jpeg;base64,') == len(res.results) == 2  # chelsea, black_cat
    assert page.count('loading="lazy"') == 2
    assert "chelsea.jpg" in page and f"{res.results[0].score:.3f}" in page
    assert str(res.results[0].tags[0]["name"]) in page


def test_an_edited_copy_of_the_query_is_marked(indexed, photos: Path) -> None:  # type: ignore[no-untyped-def]
    import io

    with Image.open(photos / "coffee.jpg") as im:
        w, h = im.size
        buf = io.BytesIO()
        im.convert("RGB").crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(buf, "JPEG", quality=70)
    res = indexed.search(image=buf.getvalue(), limit=3)
    page = res._repr_html_()
    assert res.results[0].path.endswith("coffee.jpg") and res.results[0].copy
    assert page.count('class="copy"') == 1 and f"copy {res.results[0].copy_score:.2f}" in page
    pytest.importorskip("pandas")
    assert res.to_pandas()["copy"].tolist()[:2] == [True, False]


def test_show_is_a_contact_sheet(indexed, photos: Path) -> None:  # type: ignore[no-untyped-def]
    res = indexed.search(image=photos / "puppy.jpg", limit=4)
    sheet = res.show(columns=5)
    assert isinstance(sheet, Image.Image)
    assert sheet.width > 5 * 200 and sheet.height > 200  # the query and 4 results in one row
    # the query photo is the first tile, the best match (the same photo) the second: same pixels
    a = np.asarray(sheet.crop((8, 8, 208, 208)).convert("L"), dtype=float)
    b = np.asarray(sheet.crop((216, 8, 416, 208)).convert("L"), dtype=float)
    assert np.abs(a - b).mean() < 3 and a.std() > 10  # same photo, and not a blank tile


def test_to_pandas(indexed, photos: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pandas")
    res = indexed.search(image=photos / "puppy.jpg", limit=5)
    df = res.to_pandas()
    assert list(df["rank"]) == [1, 2, 3, 4, 5]
    assert df["path"].iloc[0].endswith("puppy.jpg")
    assert {"score", "width", "height", "taken_at", "camera", "tags"} <= set(df.columns)


def test_dupes_report_marks_the_best_copy(new_library, tmp_path: Path, photos: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "d"
    folder.mkdir()
    for name in ("coffee.jpg", "guitar.jpg"):
        shutil.copyfile(photos / name, folder / name)
    shutil.copyfile(photos / "coffee.jpg", folder / "coffee-copy.jpg")
    lib = new_library()
    lib.index([folder])
    report = lib.dupes()
    page = report._repr_html_()
    assert "group 1: exact copies (2)" in page
    assert page.count('class="best"') == 1 and page.count("same bytes") == 1
    if pytest.importorskip("pandas"):
        df = report.to_pandas()
        assert df["best"].tolist().count(True) == 1 and len(df) == 2


def test_html_is_escaped_and_thumbnails_capped(tmp_path: Path, photos: Path) -> None:
    evil = tmp_path / "<script>x.jpg"
    shutil.copyfile(photos / "coffee.jpg", evil)
    rows = [{"label": "#1", "path": str(evil), "score": 1.0, "tags": ["<b>tag</b>"]}] * (MAX_THUMBS + 5)
    page = render_html("<i>title</i>", [("", rows)])
    assert "<script>" not in page and "&lt;script&gt;x.jpg" in page and "&lt;b&gt;tag" in page
    assert page.count("data:image/jpeg") == MAX_THUMBS


def test_missing_file_shows_a_blank_tile(tmp_path: Path) -> None:
    page = render_html("t", [("", [{"label": "#1", "path": str(tmp_path / "gone.jpg"), "score": 0.5}])])
    assert "gone.jpg" in page and "data:image" not in page


def test_walkthrough_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env_path = os.environ.get("PYTHONPATH")
    src = str(Path(__file__).resolve().parents[1] / "src")
    os.environ["PYTHONPATH"] = src + (os.pathsep + env_path if env_path else "")  # the kernel imports this tree
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_path is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = env_path
    outs = [[o for o in c.get("outputs", [])] for c in nb.cells if c.cell_type == "code"]
    errors = [o for cell in outs for o in cell if o.get("output_type") == "error"]
    assert not errors, errors

    def html_of(n: int) -> str:
        return "".join(o.get("data", {}).get("text/html", "") for o in outs[n])

    def text_of(n: int) -> str:
        return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outs[n])

    def names(page: str) -> list[str]:  # the thumbnails' file names, in order
        return re.findall(r'<img src="data:image/jpeg;base64,[^"]*" loading="lazy" alt="([^"]+)"', page)

    def shown_scores(page: str) -> list[float]:
        return [float(x) for x in re.findall(r"<b>#\d+  ([0-9.]+)", page)]

    # code cells: 1 index; 2 image search; 3 keywords; 4 show(); 5 by tags; 6 DataFrame; 7-8 scores and a
    # threshold; 9 a word left out; 10 copy check; 11-13 teach, concepts, forget; 14 feedback; 15-16 dupes
    assert "indexed 13" in text_of(1)
    assert html_of(2).count("data:image/jpeg") == 6 and "puppy.jpg" in html_of(2)
    assert "chelsea.jpg" in html_of(3) and "black_cat.jpg" in html_of(3)
    assert any("image/png" in o.get("data", {}) for o in outs[4])
    assert html_of(5).index("chelsea.jpg") < html_of(5).index("black_cat.jpg")
    assert "<table" in html_of(6) and "motorcycle_left.jpg" in html_of(6)
    animals = ast.literal_eval(text_of(7))
    kept = shown_scores(html_of(8))
    assert {"chelsea.jpg", "puppy.jpg", "gold_fish.jpg"} <= {name for name, _ in animals}
    assert kept and all(score >= 0.6 for score in kept) and len(kept) == sum(score >= 0.6 for _, score in animals)
    left_out, no_cats = ast.literal_eval(text_of(9))
    assert left_out >= 2 and not {"chelsea.jpg", "black_cat.jpg"} & set(no_cats) and "puppy.jpg" in no_cats
    copies = ast.literal_eval(text_of(10))
    assert copies[0][:2] == ("rocket.jpg", True) and not any(flag for _, flag, _ in copies[1:])
    assert set(names(html_of(11))[:2]) == {"chelsea.jpg", "puppy.jpg"}  # the taught word's own examples first
    assert ast.literal_eval(text_of(12)) == [("floof", ["chelsea.jpg", "puppy.jpg"], ["tent.jpg"])]
    assert "floof" in text_of(13)
    fed = html_of(14)
    assert names(fed)[0] == "gold_fish.jpg" != animals[0][0]  # the marked photo moved up to the top
    assert shown_scores(fed) == sorted(shown_scores(fed), reverse=True)
    dupes = html_of(15)
    assert "exact copies" in dupes and "near duplicates" in dupes and 'class="best"' in dupes
    assert "guitar-cropped.jpg" in dupes and "coffee-copy.jpg" in dupes


def test_people_show_their_faces(people_index: Path) -> None:
    """lib.people() renders as each person's most typical face, cropped from its photo."""
    from lookalike.library import Library

    with Library(people_index, faces=True) as lib:
        people = lib.people(update=False)
        page = people._repr_html_()
    assert len(people) == 3 and people[0].faces == 5  # still a list of Person
    assert page.count("data:image/jpeg") == 3 and "5 faces in 5 photos" in page and "person " in page
    import base64
    import io

    first = page.split('src="data:image/jpeg;base64,', 1)[1].split('"', 1)[0]
    with Image.open(io.BytesIO(base64.b64decode(first))) as face:
        assert max(face.size) <= 120 and face.width / face.height < 2  # a face crop, not the whole wide photo
