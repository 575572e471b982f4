"""The web page in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against the real app under
uvicorn. Screenshots land in test-artifacts/ (gitignored)."""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike.samples import copy_samples

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("LOOKALIKE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

if not os.path.exists(CHROMIUM):
    pytest.skip(f"Debian chromium is not installed ({CHROMIUM}); `make system-deps` installs it (apt-get, root)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(30_000)
    pg.goto(live_server.url)
    pg.wait_for_selector("body[data-ready='1']")
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def card_names(pg) -> list[str]:  # type: ignore[no-untyped-def]
    return pg.locator("#results .card .name").all_inner_texts()


def wait_for_first(pg, name: str) -> None:  # type: ignore[no-untyped-def]
    pg.wait_for_function("name => { const n = document.querySelector('#results .card .name');"
                         " return n && n.textContent === name; }", arg=name)


def shot(pg, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    pg.screenshot(path=str(path))
    return path


def test_keyword_search_shows_the_right_photo(page) -> None:  # type: ignore[no-untyped-def]
    page.fill("#q", "guitar")
    page.press("#q", "Enter")
    wait_for_first(page, "guitar.jpg")
    first = page.locator("#results .card").first
    assert first.locator(".rank").inner_text() == "#1"
    assert float(first.locator(".score").inner_text()) > 0
    assert first.locator(".tags li").count() >= 1
    # the thumbnail really loaded (decoded by the browser, not a broken image)
    page.wait_for_function("() => { const i = document.querySelector('#results .card img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert "#q=guitar" in page.url
    page.fill("#q", "cat")
    page.click("#text-form button[type=submit]")
    page.wait_for_function("() => [...document.querySelectorAll('#results .card .name')].map(n => n.textContent)"
                           ".join() === 'chelsea.jpg,black_cat.jpg'")
    page.wait_for_function("() => [...document.querySelectorAll('#results .card img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert "understood as" in page.inner_text("#query-explain")
    shot(page, "web-keyword-search.png")


def test_min_score_works_on_keyword_searches(page) -> None:  # type: ignore[no-untyped-def]
    """Keyword scores are probabilities: "Min. score" 0.5 keeps the cats and nothing else."""
    page.evaluate("() => { document.getElementById('threshold').value = '0.5'; }")
    page.fill("#q", "cat")
    page.press("#q", "Enter")
    page.wait_for_function("() => [...document.querySelectorAll('#results .card .name')].map(n => n.textContent)"
                           ".sort().join() === 'black_cat.jpg,chelsea.jpg'")
    scores = [float(s) for s in page.locator("#results .card .score").all_inner_texts()]
    assert scores and all(0.5 <= s <= 1.0 for s in scores)


def test_dropped_image_comes_first(page, photos: Path) -> None:  # type: ignore[no-untyped-def]
    data = base64.b64encode((photos / "pets" / "puppy.jpg").read_bytes()).decode()
    page.evaluate("""b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const file = new File([bytes], 'my-dog.jpg', {type: 'image/jpeg'});
        const dt = new DataTransfer();
        dt.items.add(file);
        const zone = document.getElementById('drop');
        for (const type of ['dragenter', 'dragover', 'drop'])
            zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", data)
    wait_for_first(page, "puppy.jpg")
    assert float(page.locator("#results .card .score").first.inner_text()) > 0.99
    assert page.locator("#results .card").first.locator(".copy-mark").inner_text().lower() == "copy"
    assert page.locator("#results .card .copy-mark").count() == 1  # the other results are not copies
    assert page.is_visible("#query-img")
    assert "my-dog.jpg" in page.inner_text("#query-text")
    shot(page, "web-dropped-image.png")


def test_pasted_image_is_searched(page, photos: Path) -> None:  # type: ignore[no-untyped-def]
    data = base64.b64encode((photos / "things" / "coffee.jpg").read_bytes()).decode()
    page.evaluate("""b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'image.png', {type: 'image/jpeg'}));
        document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
    }""", data)
    wait_for_first(page, "coffee.jpg")


def test_picked_file_is_searched(page, photos: Path) -> None:  # type: ignore[no-untyped-def]
    page.set_input_files("#file", str(photos / "things" / "rocket.jpg"))
    wait_for_first(page, "rocket.jpg")


def test_more_like_this(page, ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    page.fill("#q", "dog")
    page.press("#q", "Enter")
    wait_for_first(page, "puppy.jpg")
    page.locator("#results .card .more").first.click()
    page.wait_for_function("() => document.getElementById('query-text').textContent === 'More like this photo'")
    # the "dog" results also start with puppy.jpg: wait for the new list (the photo itself, then its neighbours)
    page.wait_for_function("() => document.querySelectorAll('#results .card').length > 1")
    wait_for_first(page, "puppy.jpg")
    assert page.locator("#results .card").first.get_attribute("data-id") == str(ids["puppy"])
    assert page.url.endswith(f"#id={ids['puppy']}")
    # the same for another photo
    page.locator("#results .card", has=page.locator(".name", has_text="black_cat.jpg")).locator(".more").click()
    wait_for_first(page, "black_cat.jpg")
    assert card_names(page)[1] == "chelsea.jpg"
    page.go_back()  # the browser's back button returns to the previous query
    wait_for_first(page, "puppy.jpg")


def test_folder_filter_and_url_search(page, photos: Path) -> None:  # type: ignore[no-untyped-def]
    page.click("#filters summary")
    page.fill("#folder", str(photos / "pets"))
    page.fill("#q", "guitar")
    page.press("#q", "Enter")
    page.wait_for_function("() => !document.querySelector('#results').hasAttribute('aria-busy')")
    page.wait_for_timeout(100)
    assert "guitar.jpg" not in card_names(page)
    page.fill("#url", "http://127.0.0.1:9/x.jpg")  # loopback: refused by the server's URL policy
    page.click("#url-form button")
    page.wait_for_function("() => document.getElementById('message').dataset.kind === 'error'")
    assert "allow-private-urls" in page.inner_text("#message")


def index_from_the_page(browser, start_server, fresh_library, tmp_path: Path, new: list[str], routes=()):  # type: ignore[no-untyped-def]
    """A library of one photo (its own: the session one stays as the other tests expect it) served to a new
    page (``routes``: (pattern, handler) installed first), which asks to index a folder of ``new`` samples.
    Returns (context, page)."""
    from lookalike.server.app import create_app

    lib = fresh_library()
    lib.index([copy_samples(tmp_path / "first", ["tent"])[0].parent])
    server = start_server(create_app(lib))
    folder = tmp_path / "new"
    copy_samples(folder, new)
    context = browser.new_context()
    page = context.new_page()
    for pattern, handler in routes:
        page.route(pattern, handler)
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => document.getElementById('stats').textContent.startsWith('1 photo')")
    page.click("#tab-index")
    assert page.is_visible("#index-form")
    page.fill("#index-folder", str(folder))
    page.click("#index-form button[type=submit]")
    return context, page


def test_index_a_folder_with_progress(browser, start_server, fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    context, page = index_from_the_page(browser, start_server, fresh_library, tmp_path, ["sunrise", "fighter_fish"])
    page.wait_for_selector("#job:not([hidden])")
    assert page.is_visible("#job-progress")
    page.wait_for_function("() => document.getElementById('job-state').textContent === 'done'", timeout=120_000)
    assert page.get_attribute("#job-progress", "value") == "1"
    assert "2 indexed" in page.inner_text("#job-text")
    page.wait_for_function("() => document.getElementById('stats').textContent.startsWith('3 photos')")
    shot(page, "web-index-done.png")
    page.fill("#index-folder", "/etc")
    page.click("#index-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('job-state').textContent === 'refused'")
    assert "outside" in page.inner_text("#job-text")
    context.close()


def test_indexing_view_rides_out_failed_requests(browser, start_server, fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A poll of the job and the counts' refresh after it each fail once (a 503 from a busy server, a dropped
    connection): the page keeps following the job and still shows the new counts."""
    failed: list[str] = []

    def poll(route) -> None:  # type: ignore[no-untyped-def]
        if "poll" in failed:
            route.continue_()
        else:
            failed.append("poll")
            route.fulfill(status=503, content_type="application/json", body='{"error": "busy"}')

    def stats(route) -> None:  # type: ignore[no-untyped-def]
        if "poll" not in failed or "stats" in failed:
            route.continue_()  # the page's first stats (before the job) and every one after the failure
        else:
            failed.append("stats")
            route.abort("connectionreset")

    context, page = index_from_the_page(browser, start_server, fresh_library, tmp_path, ["sunrise"],
                                        routes=[("**/api/index/*", poll), ("**/api/stats", stats)])
    page.wait_for_function("() => document.getElementById('job-state').textContent === 'done'", timeout=120_000)
    page.wait_for_function("() => document.getElementById('stats').textContent.startsWith('2 photos')")
    assert failed == ["poll", "stats"]  # both failures happened, and the page came through them
    context.close()


def test_indexing_view_rides_out_a_request_that_never_answers(browser, start_server, fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The first poll of the job is lost (no answer, no error: the route is left pending): after the page's
    deadline for it, it polls again and follows the job to its end and the new counts."""
    held: list[object] = []

    def poll(route) -> None:  # type: ignore[no-untyped-def]
        if held:
            route.continue_()
        else:
            held.append(route)  # never fulfilled nor continued: the request hangs

    context, page = index_from_the_page(browser, start_server, fresh_library, tmp_path, ["sunrise"],
                                        routes=[("**/api/index/*", poll)])
    page.wait_for_function("() => document.getElementById('job-state').textContent === 'done'", timeout=120_000)
    page.wait_for_function("() => document.getElementById('stats').textContent.startsWith('2 photos')")
    assert len(held) == 1
    context.close()


def test_duplicates_view(browser, fresh_library, start_server, tmp_path: Path, private_trash: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from lookalike.evaluation.edits import apply
    from lookalike.server.app import create_app

    folder = tmp_path / "dupes"
    copy_samples(folder, ["coffee", "chelsea", "guitar"])
    (folder / "chelsea-copy.jpg").write_bytes((folder / "chelsea.jpg").read_bytes())
    with Image.open(folder / "coffee.jpg") as im:
        apply("crop25", im, "web").save(folder / "coffee-cropped.jpg", quality=85)
    lib = fresh_library()
    lib.index([folder])
    server = start_server(create_app(lib))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='1']")
    page.click("#tab-dupes")
    page.click("#dupes-form button[type=submit]")
    page.wait_for_function("() => ['ok', 'error'].includes(document.getElementById('dupes-message').dataset.kind)")
    assert page.get_attribute("#dupes-message", "data-kind") == "ok", page.inner_text("#dupes-message")
    assert int(page.get_attribute("body", "data-dupes-polls") or 0) >= 1  # followed the duplicates job
    groups = page.locator(".dupe-group")
    assert groups.count() == 2
    assert "exact copies" in groups.nth(0).inner_text() and "near duplicates" in groups.nth(1).inner_text()
    near = groups.nth(1).locator("figcaption").all_inner_texts()
    assert near[0].startswith("coffee.jpg") and near[1].startswith("coffee-cropped.jpg")  # the best copy first
    assert "best: most pixels" in groups.nth(1).inner_text()  # the uncropped photo, and why
    assert groups.nth(1).locator(".dupe.best").count() == 1 and "BEST" in near[0].upper()
    assert "×" in near[1] and "kB" in near[1]  # dimensions and sizes
    page.wait_for_function("() => [...document.querySelectorAll('.dupe img')].every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "web-duplicates.png")

    # keep the best of the near duplicates: asked first; "Cancel" moves nothing
    groups.nth(1).locator(".keep-best").click()
    page.wait_for_selector("#confirm[open]")
    assert "Move 1 file to the trash" in page.inner_text("#confirm-text")
    page.click("#confirm-cancel")
    assert (folder / "coffee-cropped.jpg").exists()
    groups.nth(1).locator(".keep-best").click()
    page.click("#confirm-ok")
    page.wait_for_function("() => document.getElementById('dupes-message').textContent.startsWith('Moved 1 file')")
    assert not (folder / "coffee-cropped.jpg").exists() and (folder / "coffee.jpg").exists()
    assert [p.name for p in (private_trash / "files").iterdir()] == ["coffee-cropped.jpg"]
    assert "Moved 1 copy to the trash" in groups.nth(1).inner_text()
    # then every group at once
    page.click("#dupes-keep-all")
    assert "Move 1 file" in page.inner_text("#confirm-text")
    page.click("#confirm-ok")
    page.wait_for_function("() => document.querySelectorAll('#dupes-actions li').length === 2")
    assert sorted(p.name for p in folder.iterdir()) == ["chelsea.jpg", "coffee.jpg", "guitar.jpg"]
    shot(page, "web-duplicates-moved.png")
    # the moved copies leave the Photos list and the header's count at once
    page.wait_for_function("() => document.getElementById('stats').textContent.startsWith('3 photos')")
    page.click("#tab-photos")
    page.wait_for_function("() => document.querySelectorAll('#results .card').length === 3")
    assert sorted(card_names(page)) == ["chelsea.jpg", "coffee.jpg", "guitar.jpg"]
    page.click("#tab-dupes")
    # undo the first action from the log: the cropped copy comes back, indexed again, a group again
    page.locator("#dupes-actions li").nth(1).locator(".undo").click()
    page.wait_for_function("() => document.getElementById('dupes-message').textContent.startsWith('Put back 1 file')")
    assert (folder / "coffee-cropped.jpg").exists()
    page.wait_for_function("() => document.querySelectorAll('.dupe-group').length === 1")
    assert "coffee-cropped.jpg" in page.inner_text(".dupe-group")
    # the log is fetched again after the undo (asynchronously): wait for it to mark the action undone
    page.wait_for_selector("#dupes-actions li:nth-child(2) .undone")
    assert page.locator("#dupes-actions li").nth(1).locator(".undo").count() == 0
    context.close()


def test_start_page_browses_the_library(page, photos: Path) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => document.querySelectorAll('#results .card').length === 11")
    assert page.inner_text("#message").startswith("11 photos, newest first")
    assert page.is_hidden("#query") and page.is_hidden("#load-more")
    # the folder chips come from their own request (beside the photos'): wait for them, not only the cards
    page.wait_for_function("() => document.querySelectorAll('#folders .chip').length === 3")
    chips = page.locator("#folders .chip").all_inner_texts()
    assert [c.split()[0] for c in chips] == ["All", "pets", "things"]
    page.wait_for_function("() => [...document.querySelectorAll('#results .card img')].every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "web-browse.png")
    page.locator("#folders .chip", has_text="pets").click()
    page.wait_for_function("() => document.querySelectorAll('#results .card').length === 4")
    assert "folder=" in page.url and page.input_value("#folder") == str(photos / "pets")
    assert page.locator("#folders .chip[aria-pressed=true]").inner_text().startswith("pets")


def test_pages_load_more_and_scroll(browser, live_server, ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.goto(live_server.url + "?page=4")  # four photos a page
    # four cards do not fill the window, so infinite scroll may fetch the second page by itself at once (the
    # button then hides while it loads): click it only when the page has not done so, through the DOM
    pg.wait_for_function("() => document.querySelectorAll('#results .card').length >= 4"
                         " && !document.getElementById('results').hasAttribute('aria-busy')")
    if pg.locator("#results .card").count() < 8:
        pg.evaluate("() => { const b = document.getElementById('load-more'); if (!b.hidden) b.click(); }")
    pg.wait_for_function("() => document.querySelectorAll('#results .card').length >= 8")
    pg.mouse.wheel(0, 20_000)  # infinite scroll: the last page comes by itself
    pg.wait_for_function("() => document.querySelectorAll('#results .card').length === 11")
    pg.wait_for_selector("#load-more", state="hidden")
    names = pg.locator("#results .card .name").all_inner_texts()
    assert len(set(names)) == 11
    # every card shows a day: the date taken, else the file's
    days = pg.evaluate("() => [...document.querySelectorAll('#results .card .rank')].map(r => [r.textContent, r.title])")
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) and t for d, t in days), days
    # a search pages the same way, its ranks going on
    pg.goto(live_server.url + f"?page=4#id={ids['puppy']}")
    pg.wait_for_function("() => document.getElementById('query-text').textContent === 'More like this photo'")
    # the first page of four; infinite scroll may fetch the next one by itself at once (four cards do not fill
    # a 1280 x 900 window, so the end of the list is in view), so wait for the second page either way
    pg.wait_for_function("() => document.querySelectorAll('#results .card').length >= 4"
                         " && !document.getElementById('results').hasAttribute('aria-busy')")
    if pg.locator("#results .card").count() < 8:
        pg.evaluate("() => { const b = document.getElementById('load-more'); if (!b.hidden) b.click(); }")
    pg.wait_for_function("() => document.querySelectorAll('#results .card').length >= 8")
    # ranks and names read in one snapshot: infinite scroll may append the third page between two reads
    ranks, names = pg.evaluate("() => { const c = [...document.querySelectorAll('#results .card')];"
                               " return [c.map(e => e.querySelector('.rank').textContent),"
                               " c.map(e => e.querySelector('.name').textContent)]; }")
    assert ranks == [f"#{i}" for i in range(1, len(ranks) + 1)]  # the ranks go on from page to page
    assert len(ranks) >= 8 and len(set(names)) == len(ranks)  # nothing shown twice
    context.close()


def open_viewer_on(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("#results .card", has=page.locator(".name", has_text=name)).locator(".thumb").click()
    page.wait_for_selector("#viewer[open]")
    page.wait_for_function("n => document.getElementById('viewer-name').textContent === n"
                           " && document.getElementById('viewer').dataset.ready === document.getElementById('viewer').dataset.id", arg=name)
    # the viewer's details come at once, its photo lays out when it has loaded (a loaded CI machine once measured
    # it 0 wide): every test that measures the viewer waits for that
    page.wait_for_function("() => { const i = document.getElementById('viewer-img');"
                           " return i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0; }")


def test_viewer(page, ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    page.fill("#q", "cat")
    page.press("#q", "Enter")
    wait_for_first(page, "chelsea.jpg")
    open_viewer_on(page, "chelsea.jpg")
    meta = page.inner_text("#viewer-meta")
    assert "451 × 300 px" in meta and "chelsea.jpg" in meta and "Camera" in meta and "Taken" in meta
    assert "cat" in page.inner_text("#viewer-tags")
    assert "a photo of" in page.inner_text("#viewer-texts")  # the caption
    page.wait_for_function("() => { const i = document.getElementById('viewer-img');"
                           " return i.complete && i.naturalWidth === 451; }")  # the original, full size
    assert page.locator("#viewer-slot-teach").count() == 1  # where "teach a word" goes
    shot(page, "web-viewer.png")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.getElementById('viewer-name').textContent === 'black_cat.jpg'")
    assert page.is_disabled("#viewer-next")  # the last of the two results
    page.keyboard.press("Escape")  # closed on another photo than it was opened on: the focus goes to its card
    page.wait_for_function("() => { const c = document.activeElement && document.activeElement.closest('.card');"
                           " return c && c.querySelector('.name').textContent === 'black_cat.jpg'; }")
    open_viewer_on(page, "black_cat.jpg")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.getElementById('viewer-name').textContent === 'chelsea.jpg'")
    page.click("#viewer-similar")
    page.wait_for_selector("#viewer", state="hidden")
    page.wait_for_function("() => document.getElementById('query-text').textContent === 'More like this photo'")
    assert page.url.endswith(f"#id={ids['chelsea']}")
    wait_for_first(page, "chelsea.jpg")
    open_viewer_on(page, "chelsea.jpg")
    page.click("#viewer-copies")
    page.wait_for_function("() => document.getElementById('query-text').textContent.startsWith('Copies')")
    assert page.url.endswith(f"#copies={ids['chelsea']}")
    page.wait_for_function("() => document.querySelectorAll('#results .card').length === 1")  # no copy but itself
    page.keyboard.press("Escape")


def test_viewer_shows_faces(browser, fresh_library, start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lookalike.models.faces import available
    from lookalike.server.app import create_app

    if not available():
        pytest.skip("the face model (extras) is not installed")

    lib = fresh_library(faces=True)
    lib.index([copy_samples(tmp_path / "people", ["astronaut"])[0].parent])
    server = start_server(create_app(lib))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.goto(server.url)
    pg.wait_for_function("() => document.querySelectorAll('#results .card').length === 1")
    open_viewer_on(pg, "astronaut.jpg")
    pg.wait_for_selector("#viewer-faces .face")
    # open_viewer_on waited for the photo to lay out: the box must lie inside it
    box = pg.locator("#viewer-faces .face").first.bounding_box()
    img = pg.locator("#viewer-img").bounding_box()
    assert box and img and img["width"] > 0 and box["width"] > 0
    assert img["x"] <= box["x"] and box["x"] + box["width"] <= img["x"] + img["width"]
    assert img["y"] <= box["y"] and box["y"] + box["height"] <= img["y"] + img["height"]
    assert "Faces" in pg.inner_text("#viewer-meta")
    context.close()


def test_filters_live_in_the_url(browser, live_server, photos: Path) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    context = browser.new_context()
    pg = context.new_page()
    pg.goto(live_server.url + f"#q=cat&folder={quote(str(photos / 'pets'))}&min_size=100")
    wait_for_first(pg, "chelsea.jpg")
    assert pg.input_value("#q") == "cat" and pg.input_value("#min-size") == "100"
    assert pg.input_value("#folder") == str(photos / "pets") and pg.inner_text("#filter-count") == "2"
    assert pg.is_visible("#min-size")  # a link with filters opens them
    pg.fill("#min-size", "100000")
    pg.press("#min-size", "Tab")  # a change applies at once
    pg.wait_for_function("() => document.getElementById('message').dataset.kind === 'empty'")
    assert "min_size=100000" in pg.url
    pg.reload()  # the URL reproduces the search
    pg.wait_for_function("() => document.getElementById('message').dataset.kind === 'empty'")
    assert pg.input_value("#q") == "cat" and pg.input_value("#min-size") == "100000"
    pg.click("#clear-filters")
    wait_for_first(pg, "chelsea.jpg")
    assert pg.url.endswith("#q=cat")
    pg.goto(live_server.url + "#after=2999-01-01&threshold=0.5")  # browsing takes the filters too ...
    pg.wait_for_function("() => document.getElementById('message').dataset.kind === 'empty'")
    assert pg.input_value("#after") == "2999-01-01" and pg.locator("#results .card").count() == 0
    assert pg.inner_text("#filter-count") == "1"  # ... but for Min. score, which counts in a search only
    context.close()


def test_upload_says_so_and_clears_the_words(page, photos: Path) -> None:  # type: ignore[no-untyped-def]
    page.fill("#q", "cat")
    page.press("#q", "Enter")
    wait_for_first(page, "chelsea.jpg")
    page.set_input_files("#file", str(photos / "things" / "rocket.jpg"))
    wait_for_first(page, "rocket.jpg")
    assert page.input_value("#q") == ""
    assert "uploaded image" in page.inner_text("#query-text") and "#upload=rocket.jpg" in page.url
    page.reload()
    page.wait_for_function("() => document.getElementById('message').textContent.includes('uploaded image')")
    assert page.locator("#results .card").count() == 11 and page.input_value("#q") == ""


def test_phone_screen(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    pg = context.new_page()
    pg.goto(live_server.url + "#q=cat")
    wait_for_first(pg, "chelsea.jpg")
    pg.wait_for_function("() => [...document.querySelectorAll('#results .card img')]"
                         ".every(i => i.complete && i.naturalWidth > 0)")
    # nothing wider than the screen, and two cards side by side
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    boxes = [pg.locator("#results .card").nth(i).bounding_box() for i in range(2)]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[1]["x"] + boxes[1]["width"] <= 390
    for sel in ("#q", "#drop", "#url", "#tab-dupes", "#tab-index"):
        box = pg.locator(sel).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, sel
    shot(pg, "web-phone.png")
    # the viewer fills the phone's screen, photo above its details, nothing wider than the screen
    open_viewer_on(pg, "chelsea.jpg")
    for sel in ("#viewer", "#viewer-img", "#viewer-meta", "#viewer-similar", "#viewer-close"):
        box = pg.locator(sel).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390.5, sel
    img, meta = pg.locator("#viewer-img").bounding_box(), pg.locator("#viewer-meta").bounding_box()
    assert img["y"] + img["height"] <= meta["y"]
    shot(pg, "web-phone-viewer.png")
    pg.keyboard.press("Escape")
    pg.goto(live_server.url)  # the library
    pg.wait_for_function("() => document.querySelectorAll('#results .card').length === 11")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    shot(pg, "web-phone-browse.png")
    context.close()


def test_token_prompt(browser, start_server, library, settings) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from lookalike.server.app import create_app

    server = start_server(create_app(library, replace(settings, token="let-me-in")))
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(server.url)
    pg.wait_for_selector("#token-form:not([hidden])")
    pg.fill("#token", "let-me-in")
    pg.click("#token-form button")
    pg.wait_for_function("() => /photos/.test(document.getElementById('stats').textContent)")
    pg.fill("#q", "goldfish")
    pg.press("#q", "Enter")
    wait_for_first(pg, "gold_fish.jpg")
    # thumbnails are <img> requests: they get through with the cookie the page set
    pg.wait_for_function("() => { const i = document.querySelector('#results .card img');"
                         " return i && i.complete && i.naturalWidth > 0; }")
    context.close()


def test_people_view(browser, start_server, people_index: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """People tab: three people with their sample faces; naming one makes its name a search word (Photos);
    naming a second person with the same name merges them; a face moved to a new name splits it off."""
    from lookalike.library import Library
    from lookalike.server.app import create_app

    shutil.copytree(people_index, tmp_path / "lib")
    lib = Library(tmp_path / "lib")
    server = start_server(create_app(lib))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='1']")
    page.click("#tab-people")
    page.wait_for_function("() => document.getElementById('people-message').dataset.kind === 'ok'")
    cards = page.locator("#people .person")
    assert cards.count() == 3 and page.is_hidden("#panel-photos")
    page.wait_for_function("() => [...document.querySelectorAll('#people img')].every(i => i.complete && i.naturalWidth > 0)")
    assert all(t.startswith("Unnamed #") for t in page.locator("#people .person-title").all_inner_texts())
    first = cards.nth(0)
    first.locator("input").fill("Alice")
    first.locator("button[type=submit]").click()
    page.wait_for_function("() => [...document.querySelectorAll('#people .person-title')].some(t => t.textContent === 'Alice')")
    shot(page, "web-people.png")
    # merge: the second person named "alice" too
    second = page.locator("#people .person").filter(has_not_text="Alice").first
    second.locator("input").fill("alice")
    second.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelectorAll('#people .person').length === 2")
    alice = page.locator("#people .person").filter(has_text="alice").first
    assert "10 faces" in alice.inner_text()
    # split: one of her faces moved to Bob
    alice.locator(".thumb").click()
    page.wait_for_selector("#person-faces .person-face")
    assert page.locator("#person-faces .person-face").count() == 10
    face = page.locator("#person-faces .person-face").first
    face.locator("input").fill("Bob")
    face.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelectorAll('#person-faces .person-face').length === 9")
    assert page.locator("#people .person").filter(has_text="Bob").count() == 1
    # her photos: a search by the name in the Photos view
    page.locator("#people .person").filter(has_text="alice").locator("button.more").click()
    page.wait_for_function("() => document.querySelectorAll('#results .card').length === 9")
    assert page.is_visible("#panel-photos") and page.input_value("#q") == "alice" and "q=alice" in page.url
    # the viewer says who is in the photo, and names a face there
    page.locator("#results .card .thumb").first.click()
    page.wait_for_selector("#viewer[open] #viewer-slot-people .person-face")
    slot = page.locator("#viewer-slot-people")
    assert slot.locator(".person-link").inner_text() == "alice"
    slot.locator("input").fill("Carol")
    slot.locator("button[type=submit]").click()
    page.wait_for_function("() => { const b = document.querySelector('#viewer-slot-people .person-link');"
                           " return b && b.textContent === 'Carol'; }")
    shot(page, "web-viewer-people.png")
    context.close()
    lib.close()
    assert not errors, errors


def test_marks_rerank_and_save_as_a_word(page, library) -> None:  # type: ignore[no-untyped-def]
    """Good/Bad on the cards re-ranks at once; "Save as a word" teaches the marks and searches for the word."""
    page.fill("#q", "animal")
    page.press("#q", "Enter")
    page.wait_for_selector("#results .card")
    names = card_names(page)
    assert "chelsea.jpg" in names and "puppy.jpg" in names
    card = page.locator("#results .card", has=page.locator(".name", has_text="chelsea.jpg"))
    card.get_by_role("button", name="Good").click()
    page.wait_for_selector("#results .card[data-mark='good']")
    assert page.is_visible("#feedback-bar") and "1 good, 0 bad" in page.inner_text("#feedback-count")
    assert card.get_by_role("button", name="Good").get_attribute("aria-pressed") == "true"  # shown pressed
    assert card.get_by_role("button", name="Bad").get_attribute("aria-pressed") == "false"
    page.locator("#results .card", has=page.locator(".name", has_text="puppy.jpg")).get_by_role(
        "button", name="Bad").click()
    page.wait_for_function("() => ![...document.querySelectorAll('#results .card .name')]"
                           ".some(n => n.textContent === 'puppy.jpg')")  # the bad one dropped out
    assert card_names(page)[0] == "chelsea.jpg"
    page.reload()  # the marks outlive a reload of the page (this tab's sessionStorage)
    page.wait_for_selector("#results .card[data-mark='good']")
    assert "1 good, 1 bad" in page.inner_text("#feedback-count") and "puppy.jpg" not in card_names(page)
    page.click("#feedback-undo")  # the last mark (Bad on the puppy) undone: it is back
    page.wait_for_function("() => [...document.querySelectorAll('#results .card .name')]"
                           ".some(n => n.textContent === 'puppy.jpg')")
    assert "1 good, 0 bad" in page.inner_text("#feedback-count")
    page.locator("#results .card", has=page.locator(".name", has_text="puppy.jpg")).get_by_role(
        "button", name="Bad").click()
    page.wait_for_function("() => ![...document.querySelectorAll('#results .card .name')]"
                           ".some(n => n.textContent === 'puppy.jpg')")
    page.fill("#feedback-word", "my cat")
    page.click("#feedback-save")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('Taught')"
                           " || location.hash.includes('my%20cat') || location.hash.includes('my+cat')")
    page.wait_for_function("() => location.hash.includes('q=my')")
    wait_for_first(page, "chelsea.jpg")
    assert page.is_hidden("#feedback-bar")
    page.wait_for_function("() => document.getElementById('message').dataset.kind === 'ok'")
    assert page.inner_text("#message").startswith("Taught “my cat”")  # the note stays above the new list
    (c,) = [c for c in library.concepts() if c["word"] == "my cat"]
    assert len(c["examples"]) == 1 and len(c["counter_examples"]) == 1
    shot(page, "web-feedback.png")
    library.forget("my cat")


def test_a_word_left_out(page) -> None:  # type: ignore[no-untyped-def]
    page.fill("#q", "animal -cat")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.getElementById('query-explain').textContent.includes('left out: cat')")
    names = card_names(page)
    assert "puppy.jpg" in names and not {"chelsea.jpg", "black_cat.jpg"} & set(names)
    assert "q=animal+-cat" in page.url or "q=animal%20-cat" in page.url


def test_teach_a_word_from_the_viewer(page, library) -> None:  # type: ignore[no-untyped-def]
    page.fill("#q", "cat")
    page.press("#q", "Enter")
    wait_for_first(page, "chelsea.jpg")
    open_viewer_on(page, "chelsea.jpg")
    page.fill("#viewer-slot-teach input", "tabby friend")
    page.click("#viewer-slot-teach button[type=submit]")
    page.wait_for_function("() => document.querySelector('#viewer-slot-teach .message').textContent.startsWith('Taught')")
    (c,) = [c for c in library.concepts() if c["word"] == "tabby friend"]
    assert [p.rsplit("/", 1)[-1] for p in c["examples"]] == ["chelsea.jpg"]
    page.keyboard.press("Escape")
    library.forget("tabby friend")


def test_opened_on_another_tab_and_the_empty_lists_say_why(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_server.url + "#view=index")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#tab-photos")  # the list loads the first time its tab is shown (it stayed blank)
    page.wait_for_selector("#results .card")
    page.fill("#q", "the of")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.getElementById('message').dataset.kind === 'empty'")
    assert "only common words" in page.inner_text("#message")
    page.fill("#q", "cat")
    page.press("#q", "Enter")
    page.wait_for_selector("#results .card")
    page.evaluate("() => { const f = document.getElementById('filters'); f.open = true; }")
    page.fill("#folder", "/no/such/folder")
    page.dispatch_event("#folder", "change")
    page.wait_for_function("() => document.getElementById('message').dataset.kind === 'empty'")
    assert "1 filter on" in page.inner_text("#message")
    context.close()
