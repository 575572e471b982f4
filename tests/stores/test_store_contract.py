"""The store protocol's contract: ONE suite, run against the embedded store and against a real PostgreSQL,
grouped by the role each test exercises (stores/base.py: IndexStore, SearchStore, ExtrasStore, AdminStore).

Records are synthetic but shaped like real ones (unit vectors, float16 class scores, top-k tags, texts,
EXIF-like dates and cameras): the contract is about semantics, which must be identical in both stores.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from lookalike.stores.base import (
    AdminStore,
    ExtrasStore,
    FaceRecord,
    Filters,
    ImageRecord,
    IndexStore,
    Move,
    PairStore,
    PeopleStore,
    SearchStore,
    TransformStore,
)
from lookalike.stores.people import PeopleChanges

DIM = 64
CLASSES = 32


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def record(i: int, *, folder: str = "/photos/a", rng: np.random.Generator | None = None, **kw: object) -> ImageRecord:
    rng = rng or np.random.default_rng(i)
    scores = rng.dirichlet(np.full(CLASSES, 0.3)).astype(np.float32)
    top = np.argsort(-scores)[:5]
    values = dict(path=f"{folder}/img{i:04d}.jpg", size=10_000 + i, mtime=1_600_000_000.0 + i * 86_400,
                  sha=f"{i:064x}", width=640 + i, height=480 + (i % 50) * 10, embedding=unit(rng), class_scores=scores,
                  tags=[(int(c), float(scores[c])) for c in top], texts={}, taken_at=None, camera=None,
                  phash=f"{i:016x}")
    values.update(kw)
    return ImageRecord(**values)  # type: ignore[arg-type]


def ids_by_path(store) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {p: st.id for p, st in store.file_states().items()}


@pytest.fixture
def filled(store):  # type: ignore[no-untyped-def]
    """200 images over 4 folders (one nested), some with camera/date/texts."""
    store.set_model_info("test-model", "1", DIM)
    rng = np.random.default_rng(7)
    recs = []
    for i in range(200):
        folder = ["/photos/a", "/photos/b", "/photos/b/sub", "/photos/bc"][i % 4]
        kw: dict[str, object] = {}
        if i % 10 == 0:
            kw["camera"] = "Canon EOS 5D" if i % 20 == 0 else "NIKON D750"
        if i % 7 == 0:
            kw["taken_at"] = f"20{10 + i % 10:02d}-06-01T12:00:00"
        if i % 5 == 0:
            kw["texts"] = {"ocr": f"invoice number {i} total due", "caption": "a cat sitting on a sofa"}
        recs.append(record(i, folder=folder, rng=rng, **kw))
    store.write(upserts=recs[:120])
    store.write(upserts=recs[120:])
    return store, recs


def exact_top(recs: list[ImageRecord], q: np.ndarray, k: int, keep=lambda r: True) -> list[str]:  # type: ignore[no-untyped-def]
    pool = [r for r in recs if keep(r)]
    scores = np.array([float(r.embedding @ q) for r in pool])
    return [pool[j].path for j in np.argsort(-scores, kind="stable")[:k]]


def face(seed: int, box: tuple[int, int, int, int] = (1, 2, 30, 40)) -> FaceRecord:
    return FaceRecord(box, unit(np.random.default_rng(seed), 128) * 0.5)  # dlib's descriptors have norms near 0.5


def test_every_store_implements_every_role(store) -> None:  # type: ignore[no-untyped-def]
    for role in (IndexStore, SearchStore, ExtrasStore, AdminStore, PeopleStore, TransformStore, PairStore):
        names = [n for n in vars(role) if not n.startswith("_")]
        assert names and all(callable(getattr(store, n, None)) for n in names), role.__name__


class TestIndexStore:
    """Writing the index: model identity, change detection, writes (one transaction each), texts."""

    def test_model_info_set_replaced_and_cleared(self, store) -> None:  # type: ignore[no-untyped-def]
        assert store.model_info() is None
        store.set_model_info("efficientnet-lite0", "v1", DIM)
        assert store.model_info() == {"name": "efficientnet-lite0", "version": "v1", "dim": str(DIM)}
        store.set_model_info("efficientnet-lite0", "v2", DIM)
        assert store.model_info()["version"] == "v2"
        store.write(upserts=[record(1)])
        store.clear_vectors()
        assert store.model_info() is None
        # a model of another dimension can take over once the vectors are gone
        store.set_model_info("other", "1", 16)
        store.write(upserts=[record(2, embedding=unit(np.random.default_rng(0), 16))])
        assert store.vectors([ids_by_path(store)["/photos/a/img0002.jpg"]])[0].shape == (1, 16)

    def test_clear_vectors_marks_every_file_changed(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        store.write(upserts=[record(1, texts={"caption": "dog", "ocr": "exit"}), record(2)])
        store.clear_vectors()
        assert store.count() == 2
        assert all(st.mtime == -1 for st in store.file_states().values())
        emb, _ = store.vectors(list(ids_by_path(store).values()))
        assert len(emb) == 0
        info = store.get_by_path("/photos/a/img0001.jpg")
        assert info.tags == [] and info.texts == {"ocr": "exit"}  # captions came from the old model; OCR did not

    def test_upsert_by_path_replaces_without_doubling(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        first = record(1, texts={"ocr": "old words", "caption": "old"})
        store.write(upserts=[first])
        old_id = store.get_by_path(first.path).id
        second = record(99, texts={"ocr": "new words"})
        second.path = first.path
        store.write(upserts=[second])
        assert store.count() == 1
        info = store.get_by_path(first.path)
        assert info.id == old_id and info.sha == second.sha
        assert info.texts == {"ocr": "new words"}
        assert [c for c, _ in info.tags] == [c for c, _ in second.tags]
        emb, cls = store.vectors([old_id])
        np.testing.assert_allclose(emb[0], second.embedding, rtol=0, atol=1e-7)
        np.testing.assert_allclose(cls[0], second.class_scores, atol=1e-3)  # stored as float16
        # the same path twice in one batch: the last one wins, still one row
        a, b = record(5), record(6)
        b.path = a.path
        store.write(upserts=[a, b])
        assert store.count() == 2 and store.get_by_path(a.path).sha == b.sha

    def test_file_states_under_a_folder_is_prefix_exact(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        under_b = store.file_states(under=["/photos/b"])
        assert set(under_b) == {r.path for r in recs if r.path.startswith("/photos/b/")}  # b and b/sub, not bc
        assert len(under_b) == 100
        one = recs[4].path
        assert set(store.file_states(under=[one])) == {one}
        assert len(store.file_states()) == 200
        st = under_b[recs[1].path]
        assert (st.size, st.mtime, st.sha) == (recs[1].size, recs[1].mtime, recs[1].sha)

    def test_by_sha_finds_every_copy(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        a, b, c = record(1), record(2, folder="/other"), record(3)
        b.sha = a.sha
        store.write(upserts=[a, b, c])
        found = store.by_sha([a.sha, "f" * 64])
        assert set(found) == {a.sha}
        assert {st.path for st in found[a.sha]} == {a.path, b.path}
        assert store.by_sha([]) == {}

    def test_moves_touches_and_deletes(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        ids = ids_by_path(store)
        moved, touched, gone = ids[recs[0].path], ids[recs[1].path], ids[recs[2].path]
        store.write(moves=[Move(moved, "/photos/new/renamed.jpg", 123, 5.0)], touches=[Move(touched, recs[1].path, 7, 9.0)],
                    deletes=[gone])
        assert store.count() == 199
        info = store.get_by_path("/photos/new/renamed.jpg")
        assert info.id == moved and info.folder == "/photos/new" and (info.size, info.mtime) == (123, 5.0)
        assert info.tags  # a move keeps everything else
        assert store.vectors([moved])[0].shape == (1, DIM)
        st = store.file_states()[recs[1].path]
        assert (st.size, st.mtime, st.sha) == (7, 9.0, recs[1].sha)
        assert store.get([gone]) == [] and len(store.vectors([gone])[0]) == 0
        assert all(h.id != gone for h in store.knn(recs[2].embedding, 10))
        assert all(h.id != gone for h in store.text_search("invoice", 100))

    def test_move_onto_an_indexed_path_replaces_it(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        ids = ids_by_path(store)
        store.write(moves=[Move(ids[recs[0].path], recs[1].path, 1, 1.0)])
        assert store.count() == 199
        assert store.get_by_path(recs[1].path).id == ids[recs[0].path]

    def test_set_texts_adds_replaces_and_removes(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        store.write(upserts=[record(1, texts={"ocr": "parking"})])
        i = store.get_by_path("/photos/a/img0001.jpg").id
        store.set_texts(i, {"caption": "a red bicycle", "ocr": "no parking"})
        assert store.get([i])[0].texts == {"caption": "a red bicycle", "ocr": "no parking"}
        assert [h.id for h in store.text_search("bicycle", 5)] == [i]
        store.set_texts(i, {"caption": ""})
        assert store.get([i])[0].texts == {"ocr": "no parking"}
        assert store.text_search("bicycle", 5) == []

    def test_a_failed_batch_writes_nothing(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        good = record(500)
        bad = record(501)
        bad.tags = [(1, 0.5), (1, 0.4)]  # the same class twice breaks the tags' primary key
        before = store.count()
        with pytest.raises(Exception):  # noqa: B017 - each store raises its own driver's integrity error
            store.write(upserts=[good, bad], deletes=[ids_by_path(store)[recs[0].path]])
        assert store.count() == before
        assert store.get_by_path(good.path) is None and store.get_by_path(recs[0].path) is not None

    def test_reindexing_keeps_a_description_and_drops_derived_data(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        store.write(upserts=[record(1, faces=[face(1)], extras=("faces", "ocr"), texts={"caption": "a cat"})])
        i = store.get_by_path("/photos/a/img0001.jpg").id
        store.set_texts(i, {"description": "grandma's birthday", "ocr": "old text"})
        store.write(upserts=[record(5, path="/photos/a/img0001.jpg", texts={"caption": "a dog"})])  # content changed
        assert store.get([i])[0].texts == {"description": "grandma's birthday", "caption": "a dog"}
        assert store.faces([i]) == {} and [p for _, p in store.missing_extras("faces")] == ["/photos/a/img0001.jpg"]
        assert [h.id for h in store.text_search("birthday", 5)] == [i] and store.text_search("old", 5) == []
        store.write(upserts=[record(6, path="/photos/a/img0001.jpg", texts={"description": "", "caption": "x"})])
        assert store.get([i])[0].texts == {"caption": "x"}  # a record that brings its own description decides

    def test_clear_vectors_forgets_content_hashes(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        store.write(upserts=[record(1)])
        store.clear_vectors()
        assert [st.sha for st in store.file_states().values()] == [""]  # so no move or copy matches old content


class TestSearchStore:
    """Searching: records and vectors by id, nearest neighbours, filters, tag and text rankings."""

    def test_write_then_get_returns_every_field(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        r = record(3, taken_at="2021-07-04T18:30:00", camera="FUJIFILM X-T3", texts={"ocr": "STOP", "caption": "a road sign"})
        store.write(upserts=[r])
        info = store.get_by_path(r.path)
        assert (info.path, info.folder, info.size, info.mtime, info.sha, info.width, info.height) == (
            r.path, "/photos/a", r.size, r.mtime, r.sha, r.width, r.height)
        assert (info.taken_at, info.camera, info.phash) == (r.taken_at, r.camera, r.phash)
        assert [c for c, _ in info.tags] == [c for c, _ in r.tags]  # best first
        assert [s for _, s in info.tags] == pytest.approx([s for _, s in r.tags], rel=1e-6)
        assert info.texts == r.texts
        assert store.get([info.id]) == [info]

    def test_get_keeps_the_order_asked_and_skips_unknown_ids(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        ids = ids_by_path(store)
        want = [ids[recs[5].path], 10**9, ids[recs[0].path], ids[recs[150].path]]
        assert [i.path for i in store.get(want)] == [recs[5].path, recs[0].path, recs[150].path]
        assert store.get([]) == []
        assert store.get_by_path("/nowhere.jpg") is None

    def test_vectors_in_the_order_asked(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        ids = ids_by_path(store)
        emb, cls = store.vectors([ids[recs[9].path], 10**9, ids[recs[2].path]])
        assert emb.shape == (2, DIM) and emb.dtype == np.float32 and cls.shape == (2, CLASSES)
        np.testing.assert_array_equal(emb[0], recs[9].embedding)
        np.testing.assert_array_equal(emb[1], recs[2].embedding)
        np.testing.assert_array_equal(cls[1], recs[2].class_scores.astype(np.float16).astype(np.float32))
        emb, cls = store.vectors([10**9])
        assert len(emb) == 0 and cls is None
        e, c = store.copy_vectors(ids[recs[9].path])
        np.testing.assert_array_equal(e, recs[9].embedding)
        with pytest.raises(KeyError):
            store.copy_vectors(10**9)

    def test_vector_map_names_the_ids_that_have_vectors(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        ids = ids_by_path(store)
        got = store.vector_map([ids[recs[9].path], 10**9, ids[recs[2].path], ids[recs[9].path]])
        assert set(got) == {ids[recs[9].path], ids[recs[2].path]}
        np.testing.assert_array_equal(got[ids[recs[2].path]], recs[2].embedding)
        assert got[ids[recs[2].path]].dtype == np.float32 and store.vector_map([]) == {}

    def test_iter_vectors_yields_every_vector_once(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        seen: dict[int, np.ndarray] = {}
        for ids, vecs in store.iter_vectors(batch=64):
            assert ids.dtype == np.int64 and vecs.shape == (len(ids), DIM)
            for i, v in zip(ids.tolist(), vecs):
                assert i not in seen
                seen[i] = v
        by_path = ids_by_path(store)
        assert len(seen) == len(recs)
        np.testing.assert_array_equal(seen[by_path[recs[77].path]], recs[77].embedding)

    def test_knn_ranks_by_cosine_like_exact_search(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        paths = {v: p for p, v in ids_by_path(store).items()}
        rng = np.random.default_rng(1)
        for j in range(10):
            q = recs[j * 17].embedding + 0.3 * unit(rng)
            q = (q / np.linalg.norm(q)).astype(np.float32)
            hits = store.knn(q, 10)
            assert len(hits) == 10
            assert [paths[h.id] for h in hits] == exact_top(recs, q, 10)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
            want = max(float(r.embedding @ q) for r in recs)
            assert hits[0].score == pytest.approx(want, abs=1e-5)
        assert store.knn(recs[0].embedding, 0) == []
        assert len(store.knn(recs[0].embedding, 1000)) == 200  # k beyond the collection: all of it

    def test_knn_many_answers_like_knn_and_optimize_keeps_results(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        qs = np.stack([recs[i].embedding for i in (5, 50, 150)])
        many = store.knn_many(qs, 5, Filters(folder="/photos/b"))
        assert [[h.id for h in row] for row in many] == [[h.id for h in store.knn(q, 5, Filters(folder="/photos/b"))]
                                                         for q in qs]
        before = [h.id for h in store.knn(recs[9].embedding, 10)]
        assert isinstance(store.optimize(), dict)  # after a run of writes; searches answer the same after it
        assert [h.id for h in store.knn(recs[9].embedding, 10)] == before

    def test_knn_vectors_are_knn_with_the_stored_embeddings(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        by_path = {p: i for p, i in ids_by_path(store).items()}
        stored = {by_path[r.path]: r.embedding for r in recs}
        for q, k, f in [(recs[3].embedding, 30, None), (recs[60].embedding, 7, Filters(folder="/photos/b")),
                        (recs[8].embedding, 1000, None)]:
            hits, vecs = store.knn_vectors(q, k, f)
            assert [(h.id, h.score) for h in hits] == [(h.id, h.score) for h in store.knn(q, k, f)]
            assert vecs.shape == (len(hits), DIM) and vecs.dtype == np.float32
            for h, v in zip(hits, vecs):
                np.testing.assert_array_equal(v, stored[h.id])
        hits, vecs = store.knn_vectors(recs[0].embedding, 0)
        assert hits == [] and len(vecs) == 0

    def test_the_camera_filter_is_a_plain_substring(self, filled) -> None:  # type: ignore[no-untyped-def]
        """``%`` and ``_`` are characters, not LIKE's wildcards (camera=% matched every photo on SQLite)."""
        store, recs = filled
        for text in ("%", "_", "n%n", "nikon d750", "n d7"):
            _, n = store.browse(Filters(camera=text), 0, 1000)
            want = sum(1 for r in recs if text in (r.camera or "").lower())
            assert n == want, text
        assert store.browse(Filters(camera="n d7"), 0, 1000)[1] > 0

    @pytest.mark.parametrize("filters,keep", [
        (Filters(folder="/photos/b"), lambda r: r.path.startswith("/photos/b/")),
        (Filters(folder="/photos/b/sub"), lambda r: r.path.startswith("/photos/b/sub/")),
        (Filters(camera="nikon"), lambda r: r.camera == "NIKON D750"),
        (Filters(min_size=700), lambda r: min(r.width, r.height) >= 700),
        (Filters(after="2015-01-01", before="2018-01-01"),
         lambda r: "2015-01-01" <= (r.taken_at or "2020-09-13T12:26:40") < "2018-01-01"),
        (Filters(after="2020-10-01"), lambda r: r.taken_at is None and r.mtime >= 1_601_510_400),
    ])
    def test_filters_restrict_every_kind_of_search(self, filled, filters, keep) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        paths = {v: p for p, v in ids_by_path(store).items()}
        allowed = {r.path for r in recs if keep(r)}
        assert allowed, "the filter must match something for the test to mean anything"
        q = recs[3].embedding
        hits = store.knn(q, 10, filters)
        assert [paths[h.id] for h in hits] == exact_top(recs, q, 10, keep)  # k results when k exist, exact order
        tag_hits = store.tag_search({c: 1.0 for c in range(CLASSES)}, 500, filters)
        assert {paths[h.id] for h in tag_hits} == allowed
        text_allowed = {r.path for r in recs if keep(r) and r.texts}
        assert {paths[h.id] for h in store.text_search("invoice", 500, filters)} == text_allowed

    def test_filter_matching_nothing_returns_nothing(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        f = Filters(folder="/elsewhere")
        assert store.knn(recs[0].embedding, 5, f) == []
        assert store.tag_search({1: 1.0}, 5, f) == [] and store.text_search("cat", 5, f) == []

    def test_tag_search_sums_score_times_weight(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        paths = {v: p for p, v in ids_by_path(store).items()}
        weights = {3: 1.0, 11: 0.5, 20: 0.25}
        want = {}
        for r in recs:
            s = sum(score * weights.get(c, 0.0) for c, score in r.tags)
            if any(c in weights for c, _ in r.tags):
                want[r.path] = s
        hits = store.tag_search(weights, 1000)
        assert {paths[h.id] for h in hits} == set(want)
        for h in hits:
            assert h.score == pytest.approx(want[paths[h.id]], rel=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        top5 = store.tag_search(weights, 5)
        assert [h.id for h in top5] == [h.id for h in hits[:5]]
        assert store.tag_search({}, 5) == []

    def test_text_search_stems_ranks_and_ignores_syntax(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        store.write(upserts=[
            record(1, texts={"ocr": "Two cats and a dog"}),
            record(2, texts={"caption": "a cat", "ocr": "cat food, cat toys, cat tree"}),
            record(3, texts={"ocr": "quarterly invoice"}),
            record(4),
        ])
        ids = ids_by_path(store)
        hits = store.text_search("cat", 10)
        assert {h.id for h in hits} == {ids["/photos/a/img0001.jpg"], ids["/photos/a/img0002.jpg"]}  # "cats" stems to cat
        assert hits[0].id == ids["/photos/a/img0002.jpg"]  # the text that is most about cats ranks first
        assert hits[0].score > hits[1].score
        assert {h.id for h in store.text_search("invoices OR dog", 10)} == {ids["/photos/a/img0001.jpg"],
                                                                           ids["/photos/a/img0003.jpg"]}
        assert store.text_search("the of a", 10) == []  # stopwords only
        assert store.text_search('cat" & (dog | !', 10)  # query syntax is never passed through
        assert store.text_search("", 10) == [] and store.text_search("zebra", 10) == []


    def test_browse_newest_first_paged_and_filtered(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        ids = ids_by_path(store)

        def taken(r: ImageRecord) -> str:  # EXIF date, else the file's mtime as UTC text
            import datetime as dt

            return r.taken_at or dt.datetime.fromtimestamp(r.mtime, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")

        expected = [ids[r.path] for r in sorted(recs, key=lambda r: (taken(r), ids[r.path]), reverse=True)]
        first, total = store.browse(None, 0, 30)
        second, _ = store.browse(None, 30, 30)
        assert total == 200 and first + second == expected[:60]
        only_b, n_b = store.browse(Filters(folder="/photos/b", camera="canon"), 0, 100)
        keep = [ids[r.path] for r in recs if r.path.startswith("/photos/b/") and r.camera == "Canon EOS 5D"]
        assert n_b == len(keep) and sorted(only_b) == sorted(keep) and only_b == [i for i in expected if i in keep]
        assert store.browse(Filters(folder="/nowhere"), 0, 10) == ([], 0)

    def test_an_mtime_a_moment_before_midnight_is_that_day_in_every_store(self, store) -> None:  # type: ignore[no-untyped-def]
        """Dates are the mtime floored to the second, as Python (Filters.matches) and PostgreSQL make them;
        SQLite's strftime rounded to the millisecond first, which put 23:59:59.9996 on the next day."""
        import datetime as dt

        midnight = dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc).timestamp()
        store.set_model_info("test-model", "1", DIM)
        times = {"late": midnight - 0.0004, "early": midnight + 0.0004, "before-1970": -0.0004}
        store.write(upserts=[record(i, path=f"/photos/{name}.jpg", mtime=t) for i, (name, t) in enumerate(times.items())])
        ids = ids_by_path(store)
        day = Filters(after="2026-12-02", before="2026-12-03")
        assert store.browse(day, 0, 10) == ([ids["/photos/late.jpg"]], 1)
        assert store.browse(Filters(after="2026-12-03"), 0, 10) == ([ids["/photos/early.jpg"]], 1)
        assert store.browse(Filters(before="1970-01-01"), 0, 10) == ([ids["/photos/before-1970.jpg"]], 1)
        infos = store.get(list(ids.values()))
        assert all(day.matches(i) == (i.path == "/photos/late.jpg") for i in infos)


class TestExtrasStore:
    """Optional analyses: faces and OCR results, what is still to run, face search."""

    def test_faces_are_written_read_and_searched(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        alice, bob = face(1), face(2)
        near_alice = FaceRecord((5, 5, 50, 50), alice.embedding + 0.01)
        store.write(upserts=[record(1, faces=[alice], extras=("faces",)), record(2, faces=[bob, near_alice], camera="Canon"),
                             record(3)])
        ids = ids_by_path(store)
        a, b, c = (ids[f"/photos/a/img000{i}.jpg"] for i in (1, 2, 3))
        faces = store.faces([a, b, c, 10**9])
        assert set(faces) == {a, b} and len(faces[b]) == 2
        assert faces[a][0].box == (1, 2, 30, 40) and faces[b][1].box == (5, 5, 50, 50)
        np.testing.assert_array_equal(faces[a][0].embedding, alice.embedding)
        hits = store.face_search(alice.embedding, 10)
        assert [h.id for h in hits] == [a, b]  # one hit per image, by its closest face; bob's face is far
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[1].score == pytest.approx(1 - float(np.linalg.norm(near_alice.embedding - alice.embedding)), abs=1e-5)
        assert [h.id for h in store.face_search(alice.embedding, 10, max_distance=0.05)] == [a]
        assert [h.id for h in store.face_search(alice.embedding, 10, Filters(camera="canon"))] == [b]
        assert len(store.face_search(alice.embedding, 1)) == 1 and store.face_search(alice.embedding, 10, Filters(folder="/z")) == []
        store.write(deletes=[b])
        assert [h.id for h in store.face_search(alice.embedding, 10)] == [a]

    def test_extras_are_recorded_and_backfilled(self, store) -> None:  # type: ignore[no-untyped-def]
        store.set_model_info("m", "1", DIM)
        store.write(upserts=[record(1, folder="/d", extras=("ocr",)), record(2, folder="/d"), record(3, folder="/e")])
        ids = ids_by_path(store)
        a, b = ids["/d/img0001.jpg"], ids["/d/img0002.jpg"]
        assert store.missing_extras("ocr", ["/d"]) == [(b, "/d/img0002.jpg")]
        assert len(store.missing_extras("ocr")) == 2 and len(store.missing_extras("faces")) == 3
        store.write_extras(b, ("ocr", "faces"), {"ocr": "HELLO world"}, [face(7)])
        assert store.missing_extras("ocr", ["/d"]) == []
        assert store.get([b])[0].texts == {"ocr": "HELLO world"}
        assert [h.id for h in store.text_search("hello", 5)] == [b]
        store.write_extras(b, ("faces",), None, [face(8), face(9)])  # doing faces again replaces them
        assert len(store.faces([b])[b]) == 2
        store.write_extras(a, ("faces",), None, [])
        assert a not in store.faces([a]) and all(i != a for i, _ in store.missing_extras("faces"))
        store.write_extras(10**9, ("ocr",), {"ocr": "gone"})  # an image removed meanwhile: nothing happens
        assert store.count() == 3


class TestConceptStore:
    """Taught words: stored whole, replaced whole, removed; random library vectors for their negatives."""

    @staticmethod
    def concept(word: str, n_pos: int = 3, n_neg: int = 1, seed: int = 0):  # type: ignore[no-untyped-def]
        from lookalike.stores.base import ConceptExample, ConceptRecord

        rng = np.random.default_rng(seed)
        examples = [ConceptExample(f"/photos/{word}/{i}.jpg", i < n_pos, unit(rng)) for i in range(n_pos + n_neg)]
        return ConceptRecord(word=word, model="test-model", model_version="1", dim=DIM, weights=unit(rng) * 7.5,
                             bias=-1.25, examples=examples, validation={"precision": 0.9, "folds": 3},
                             created_at=1_700_000_000.5, updated_at=1_700_000_100.25)

    @staticmethod
    def same(a, b) -> bool:  # type: ignore[no-untyped-def]
        return (a.word, a.model, a.model_version, a.dim, a.bias, a.validation, a.created_at, a.updated_at) == (
            b.word, b.model, b.model_version, b.dim, b.bias, b.validation, b.created_at, b.updated_at) and \
            np.array_equal(a.weights, b.weights) and \
            [(e.path, e.positive, e.embedding.tobytes()) for e in a.examples] == \
            [(e.path, e.positive, e.embedding.tobytes()) for e in b.examples]

    def test_put_get_replace_delete(self, make_store) -> None:  # type: ignore[no-untyped-def]
        store = make_store()
        assert store.concepts() == [] and store.concept("rex") is None and not store.delete_concept("rex")
        rex, my_car = self.concept("rex"), self.concept("my car", 5, 0, seed=1)
        store.put_concept(rex)
        store.put_concept(my_car)
        assert [c.word for c in store.concepts()] == ["my car", "rex"]
        assert store.concept_words() == ["my car", "rex"]
        assert self.same(store.concept("rex"), rex) and self.same(store.concept("my car"), my_car)
        bigger = self.concept("rex", 6, 2, seed=2)  # teaching again replaces the record whole
        store.put_concept(bigger)
        assert self.same(store.concept("rex"), bigger) and len(store.concept("rex").examples) == 8
        store.close()
        again = make_store()  # survives reopening
        assert self.same(again.concept("rex"), bigger)
        assert again.delete_concept("rex") and again.concept("rex") is None
        assert [c.word for c in again.concepts()] == ["my car"]

    def test_concepts_survive_clearing_vectors(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, _ = filled
        store.put_concept(self.concept("rex"))
        store.clear_vectors()  # a model switch: the concept stays, to be re-fitted from its examples
        assert store.concept("rex") is not None

    def test_sample_vectors_is_random_distinct_and_honours_exclude(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, recs = filled
        ids = ids_by_path(store)
        exclude = sorted(ids.values())[:50]
        got_ids, emb = store.sample_vectors(60, seed=3, exclude=exclude)
        assert len(got_ids) == 60 == len(set(got_ids.tolist())) and emb.shape == (60, DIM)
        assert not set(got_ids.tolist()) & set(exclude)
        by_path = {r.path: r for r in recs}
        path_of = {i: p for p, i in ids.items()}
        for i, e in zip(got_ids, emb):  # each vector is its image's
            assert np.allclose(e, by_path[path_of[int(i)]].embedding)
        again, _ = store.sample_vectors(60, seed=3, exclude=exclude)
        assert again.tolist() == got_ids.tolist()  # deterministic for a seed
        other, _ = store.sample_vectors(60, seed=4, exclude=exclude)
        assert other.tolist() != got_ids.tolist()
        few, few_emb = store.sample_vectors(20, seed=5, exclude=exclude[:5])  # drawn by random ids, not a scan
        assert len(set(few.tolist())) == 20 and few_emb.shape == (20, DIM) and not set(few.tolist()) & set(exclude[:5])
        all_ids, _ = store.sample_vectors(1000, seed=0)  # more than there are: every one, once
        assert sorted(all_ids.tolist()) == sorted(ids.values())

    def test_sample_vectors_of_an_empty_store(self, store) -> None:  # type: ignore[no-untyped-def]
        ids, emb = store.sample_vectors(10, seed=0)
        assert len(ids) == 0 and len(emb) == 0


class TestAdminStore:
    """Administration: counts, stats, reopening."""

    def test_count_stats_and_reopening(self, make_store) -> None:  # type: ignore[no-untyped-def]
        store = make_store()
        store.set_model_info("m", "1", DIM)
        store.write(upserts=[record(i, folder=f"/p/{i % 3}") for i in range(30)])
        st = store.stats()
        assert st["store"] == ("postgresql" if make_store.kind == "postgres" else "sqlite")
        assert (st["images"], st["vectors"], st["folders"]) == (30, 30, 3)
        assert st["bytes"] > 0 and st["schema_version"] >= 1 and st["model"]["name"] == "m"
        store.close()
        again = make_store()
        assert again.count() == 30 and again.model_info()["dim"] == str(DIM)
        assert again.schema_version == st["schema_version"]


# -- PeopleStore: faces with their persons, names (stores/people.py) ------------------------------------------
@pytest.fixture
def with_faces(store):  # type: ignore[no-untyped-def]
    """Four images: a/img0001 with two faces, a/img0002 and b/img0003 with one, a/img0004 with none."""
    store.set_model_info("m", "1", DIM)
    store.write(upserts=[
        record(1, faces=[face(1), face(2, (50, 60, 70, 80))], extras=("faces",)),
        record(2, faces=[face(3)], extras=("faces",)),
        record(3, folder="/photos/b", faces=[face(4)], extras=("faces",)),
        record(4, extras=("faces",)),
    ])
    return store


def test_face_table_and_placing(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    t = s.face_table()
    ids = ids_by_path(s)
    assert t.face_id.shape == (4,) and t.embedding.shape == (4, 128)
    assert list(t.image_id) == [ids["/photos/a/img0001.jpg"]] * 2 + [ids["/photos/a/img0002.jpg"], ids["/photos/b/img0003.jpg"]]
    assert list(t.index) == [0, 1, 0, 0] and t.box[1].tolist() == [50, 60, 70, 80]
    assert (t.person == -1).all() and s.unplaced_faces() == 4 and s.people() == []
    np.testing.assert_allclose(t.embedding[2], face(3).embedding, rtol=1e-6)
    # two new people (labels -1, -2) and a name given at once
    made = s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 0.9), (int(t.face_id[2]), -1, False, 0.8),
                                               (int(t.face_id[1]), -2, True, 1.0)], names={-2: "Alice"}))
    assert set(made) == {-1, -2} and made[-1] != made[-2]
    rows = {r.id: r for r in s.people()}
    assert (rows[made[-1]].name, rows[made[-1]].faces) == (None, 2) and (rows[made[-2]].name, rows[made[-2]].faces) == ("Alice", 1)
    t = s.face_table()
    assert list(t.person) == [made[-1], made[-2], made[-1], -1] and list(t.pinned) == [False, True, False, False]
    np.testing.assert_allclose(t.score, [0.9, 1.0, 0.8, 0.0], rtol=1e-6)
    assert s.unplaced_faces() == 1
    one = s.face_table(image_ids=[ids["/photos/a/img0001.jpg"]], with_embeddings=False)
    assert list(one.index) == [0, 1] and one.embedding.shape == (2, 0)


def test_person_hits_and_filters(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    t = s.face_table()
    made = s.save_people(PeopleChanges(assign=[(int(f), -1, False, sc) for f, sc in zip(t.face_id, (0.5, 0.7, 0.9, 0.6))]))
    ids = ids_by_path(s)
    hits = s.person_hits(made[-1], 10)
    assert [(h.id, round(h.score, 4)) for h in hits] == [(ids["/photos/a/img0002.jpg"], 0.9),
                                                          (ids["/photos/a/img0001.jpg"], 0.7),  # its best face
                                                          (ids["/photos/b/img0003.jpg"], 0.6)]
    assert [h.id for h in s.person_hits(made[-1], 10, Filters(folder="/photos/b"))] == [ids["/photos/b/img0003.jpg"]]
    assert len(s.person_hits(made[-1], 1)) == 1 and s.person_hits(12345, 10) == []


def test_names_merge_drop_and_cascade(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    t = s.face_table()
    made = s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 1.0), (int(t.face_id[2]), -2, False, 1.0),
                                               (int(t.face_id[3]), -3, False, 1.0)], names={-1: "Alice"}))
    with pytest.raises(Exception):  # noqa: B017 - a second "alice" (any case) is refused by the database too
        s.save_people(PeopleChanges(names={made[-2]: "ALICE"}))
    assert {r.name for r in s.people()} == {"Alice", None}  # the failed transaction changed nothing
    # merge: person -2's face to Alice, -2 dropped
    s.save_people(PeopleChanges(assign=[(int(t.face_id[2]), made[-1], False, 1.0)], drop=[made[-2]]))
    assert sorted((r.name or "", r.faces) for r in s.people()) == [("", 1), ("Alice", 2)]
    # deleting a photo takes its faces' places along; an unnamed person left without faces goes, a named one stays
    ids = ids_by_path(s)
    s.write(deletes=[ids["/photos/a/img0001.jpg"], ids["/photos/b/img0003.jpg"]])
    s.save_people(PeopleChanges())
    assert sorted((r.name or "", r.faces) for r in s.people()) == [("Alice", 1)]
    # re-indexing a photo detects its faces anew: they wait to be placed again
    s.write(upserts=[record(2, faces=[face(3)], extras=("faces",))])
    assert s.unplaced_faces() == 1 and [(r.name, r.faces) for r in s.people()] == [("Alice", 0)]
    # a face deleted meanwhile is skipped; renaming to None keeps a person only while it has faces
    gone = int(t.face_id[0])
    s.save_people(PeopleChanges(assign=[(gone, made[-1], False, 1.0)], names={made[-1]: None}))
    assert s.people() == []


def test_ids_are_never_reused(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    t = s.face_table()
    first = s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 1.0)]))[-1]
    s.save_people(PeopleChanges(drop=[first]))
    second = s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 1.0)]))[-1]
    assert second > first


class TestTransformStore:
    """The library's search transform: one at a time, replaced whole, dropped with the vectors."""

    def test_set_replace_drop_and_cleared_with_the_vectors(self, filled) -> None:  # type: ignore[no-untyped-def]
        store, _ = filled
        assert store.search_transform() is None
        blob = bytes(range(256)) * 40  # binary, with NUL bytes
        store.set_search_transform("test-model/1", 200, blob)
        assert store.search_transform() == ("test-model/1", 200, blob)
        store.set_search_transform("test-model/1", 400, b"second")
        assert store.search_transform() == ("test-model/1", 400, b"second")
        store.set_search_transform("test-model/1", 0, None)
        assert store.search_transform() is None
        store.set_search_transform("test-model/1", 200, blob)
        store.clear_vectors()  # another model re-embeds everything: the transform fitted on the old vectors goes
        assert store.search_transform() is None


def test_people_generation_detects_a_concurrent_save(with_faces) -> None:  # type: ignore[no-untyped-def]
    """A save computed from an older state is refused (nothing saved); one from the current state goes in."""
    from lookalike.stores.people import PeopleConflict

    s = with_faces
    t = s.face_table()
    seen = s.people_generation()
    s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 1.0)]))  # someone else saved meanwhile
    assert s.people_generation() == seen + 1
    with pytest.raises(PeopleConflict):
        s.save_people(PeopleChanges(assign=[(int(t.face_id[1]), -1, False, 1.0)]), expect=seen)
    assert s.unplaced_faces() == 3 and s.people_generation() == seen + 1  # the refused save changed nothing
    s.save_people(PeopleChanges(assign=[(int(t.face_id[1]), -1, False, 1.0)]), expect=seen + 1)
    assert s.unplaced_faces() == 2 and s.people_generation() == seen + 2


def test_people_lease(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    assert s.people_lease("a", 60) and s.people_lease("a", 60)  # taken, renewed
    assert not s.people_lease("b", 60)  # held by a live owner
    s.release_people_lease("b")  # not b's to give back
    assert not s.people_lease("b", 60)
    s.release_people_lease("a")
    assert s.people_lease("b", 0.05)
    time.sleep(0.1)
    assert s.people_lease("a", 60)  # b's lease ran out: taken over
