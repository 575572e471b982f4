"""The PairStore role (stores/dupe_pairs.py) in both stores, as part of the two-store contract suite: verdicts
kept by version, replaced per pair, read back only while both images keep their content, gone with either
image, pruned when stale."""

from __future__ import annotations

import numpy as np

from lookalike.stores.base import Move, PairVerdict
from store_records import DIM, record


def _filled(store):  # type: ignore[no-untyped-def]
    store.set_model_info("test-model", "1", DIM)
    store.write(upserts=[record(i) for i in range(6)])
    ids = {p: st.id for p, st in store.file_states().items()}
    sha = {st.id: st.sha for st in store.file_states().values()}
    return [ids[f"/photos/a/img{i:04d}.jpg"] for i in range(6)], sha


def verdict(a: int, b: int, sha: dict[int, str], score: float, cosine: float = 0.8) -> PairVerdict:
    return PairVerdict(a, b, sha[a], sha[b], cosine, score)


def current(store, version: str = "v1") -> dict[tuple[int, int], float]:  # type: ignore[no-untyped-def]
    return {(p.a, p.b): round(p.score, 4) for p in store.dupe_pairs(version)}


def test_put_read_replace_and_versions(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    ids, sha = _filled(store)
    a, b, c, d = ids[:4]
    assert store.dupe_pairs("v1") == []
    store.put_dupe_pairs("v1", [verdict(a, b, sha, 0.9), verdict(d, c, sha, 0.2)])  # (d, c) is stored as (c, d)
    assert current(store) == {(a, b): 0.9, (c, d): 0.2}
    got = {(p.a, p.b): p for p in store.dupe_pairs("v1")}
    assert got[(c, d)].sha_a == sha[c] and got[(c, d)].sha_b == sha[d] and abs(got[(c, d)].cosine - 0.8) < 1e-6
    store.put_dupe_pairs("v1", [verdict(b, a, sha, 0.4)])  # verified again: replaced, not doubled
    assert current(store) == {(a, b): 0.4, (c, d): 0.2}
    assert current(store, "v2") == {}  # another model or calibration never reads these
    again = make_store()  # another connection / process sees them
    assert current(again) == {(a, b): 0.4, (c, d): 0.2}
    store.put_dupe_pairs("v2", [verdict(a, c, sha, 0.7)])
    assert store.prune_dupe_pairs("v2") == 2  # v1's go, v2's stays
    assert current(store) == {} and current(store, "v2") == {(a, c): 0.7}


def test_removed_or_changed_images_invalidate_their_pairs(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    ids, sha = _filled(store)
    a, b, c, d, e, f = ids
    store.put_dupe_pairs("v1", [verdict(a, b, sha, 0.9), verdict(b, c, sha, 0.6), verdict(c, d, sha, 0.1),
                                verdict(e, f, sha, 0.8)])
    store.write(deletes=[a])  # removed: its pairs go with it
    assert current(store) == {(b, c): 0.6, (c, d): 0.1, (e, f): 0.8}
    changed = record(3, sha="f" * 64, embedding=np.eye(DIM, dtype=np.float32)[0])  # img0003 edited in place
    store.write(upserts=[changed])
    assert store.get_by_path(changed.path).id == d  # same id, new content
    assert current(store) == {(b, c): 0.6, (e, f): 0.8}
    st = store.file_states()[f"/photos/a/img{5:04d}.jpg"]
    store.write(moves=[Move(st.id, "/photos/z/moved.jpg", st.size, st.mtime)])  # moved: same content, verdict holds
    assert current(store) == {(b, c): 0.6, (e, f): 0.8}
    assert store.prune_dupe_pairs("v1") == 1  # the changed image's row
    assert store.prune_dupe_pairs("v1") == 0
    # a verdict for a pair whose image was removed (or changed) meanwhile is not kept
    store.put_dupe_pairs("v1", [verdict(a, c, sha, 0.9), verdict(d, e, sha, 0.9), verdict(b, e, sha, 0.3)])
    assert current(store) == {(b, c): 0.6, (e, f): 0.8, (b, e): 0.3}
    store.clear_vectors()  # another model: every image counts as changed
    assert current(store) == {}
