"""Chinese whispers on real faces: three people, each in an original photo and four edited copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.search.faceclusters import (
    SAME_PERSON,
    bridges,
    chinese_whispers,
    cluster,
    confident,
    place_new,
    membership,
    neighbour_graph,
    pairwise_scores,
)
from lookalike.evaluation.people import PEOPLE, missing_people, write_people_photos


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(descriptors, person index, edit name) of every face found in the edited set."""
    pytest.importorskip("dlib")
    if missing_people():
        pytest.skip(f"sample photos not installed: {missing_people()}")
    from lookalike.models.faces import SAME_PERSON as MODEL_RULE, face_model

    assert MODEL_RULE == SAME_PERSON
    fm = face_model()
    emb, who, edit = [], [], []
    for k, (person, paths) in enumerate(write_people_photos(tmp_path_factory.mktemp("people")).items()):
        for p in paths:
            with Image.open(p) as im:
                found = fm.faces(im.convert("RGB"))
            assert len(found) == 1, (person, p.name, len(found))
            emb.append(found[0].embedding)
            who.append(k)
            edit.append(p.stem)
    return np.stack(emb), np.array(who), edit


def test_each_person_is_one_cluster(faces) -> None:  # type: ignore[no-untyped-def]
    emb, who, _ = faces
    labels = cluster(emb, np.full(len(emb), -1), np.ones(len(emb), bool))
    assert (labels < 0).all()  # all fresh clusters
    groups = {tuple(sorted(set(labels[who == k].tolist()))) for k in range(len(PEOPLE))}
    assert all(len(g) == 1 for g in groups) and len(groups) == len(PEOPLE)  # one label per person, all distinct
    assert pairwise_scores(who, labels) == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "f1": 1.0, "pairs_true": 30, "pairs_predicted": 30})


def test_new_faces_join_existing_clusters_and_ids_stay(faces) -> None:  # type: ignore[no-untyped-def]
    emb, who, edit = faces
    originals = np.array([e == "original" for e in edit])
    labels = np.full(len(emb), -1)
    labels[originals] = 10 + who[originals]  # as stored: person ids 10, 11, 12
    out = cluster(emb, labels, ~originals)  # the edits are new; the originals are clamped
    assert (out == 10 + who).all()


def test_a_new_person_forms_a_new_cluster(faces) -> None:  # type: ignore[no-untyped-def]
    emb, who, _ = faces
    labels = np.where(who < 2, 7 + who, -1)  # two people clustered, the third not yet
    out = cluster(emb, labels, who == 2)
    assert (out[who < 2] == labels[who < 2]).all()
    assert set(out[who == 2].tolist()) == {-1}


def test_reclustering_from_current_labels_keeps_ids(faces) -> None:  # type: ignore[no-untyped-def]
    emb, who, _ = faces
    labels = 100 + who
    labels[0] = -1  # one face not yet placed
    out = cluster(emb, labels, np.ones(len(emb), bool))  # everything free, warm start
    assert (out == 100 + who).all()


def test_membership_scores(faces) -> None:  # type: ignore[no-untyped-def]
    emb, who, _ = faces
    s = membership(emb, who)
    assert s.shape == (len(emb),) and (s >= 0).all() and (s <= 1).all()
    assert s.min() > 0.5  # an edited copy is well within the same-person distance of its person's mean face
    assert membership(emb[:1], np.array([3]))[0] == pytest.approx(1.0)  # seen once: its own mean


def test_majority_beats_a_bridge() -> None:
    """Two tight groups and one face within reach of both (single linkage would chain them): the bridge joins
    one group and the groups stay apart."""
    rng = np.random.default_rng(0)
    a, b = np.zeros(128, np.float32), np.zeros(128, np.float32)
    b[0] = 1.0  # the groups' centres 1.0 apart
    ga = a + rng.normal(scale=0.01, size=(6, 128)).astype(np.float32)
    gb = b + rng.normal(scale=0.01, size=(6, 128)).astype(np.float32)
    bridge = ((a + b) / 2)[None, :]  # 0.5 from both centres
    emb = np.concatenate([ga, gb, bridge])
    graph = neighbour_graph(emb)
    assert len(graph.neighbours(12)[0]) == 12  # the bridge reaches every face
    labels, passes = chinese_whispers(graph, np.full(13, -1), np.ones(13, bool))
    assert len(set(labels[:6].tolist())) == 1 and len(set(labels[6:12].tolist())) == 1
    assert labels[0] != labels[6] and labels[12] in (labels[0], labels[6])
    assert passes < 10


def test_empty_and_deterministic() -> None:
    assert cluster(np.zeros((0, 128), np.float32), np.zeros(0, np.int64), np.zeros(0, bool)).shape == (0,)
    rng = np.random.default_rng(1)
    emb = rng.normal(scale=0.03, size=(40, 128)).astype(np.float32)
    emb[20:, 1] += 1.0
    one = cluster(emb, np.full(40, -1), np.ones(40, bool), seed=3)
    assert (one == cluster(emb, np.full(40, -1), np.ones(40, bool), seed=3)).all()
    assert sorted(set(one.tolist())) == [-2, -1]


def test_a_merge_undone_splits_apart(faces) -> None:  # type: ignore[no-untyped-def]
    """Two people under one label (merged by naming, then the name removed): re-clustering parts them; the
    part holding the label's clamped faces keeps the id."""
    emb, who, edit = faces
    two = who < 2
    e, w = emb[two], who[two]
    out = cluster(e, np.full(len(e), 5), np.ones(len(e), bool))
    assert len(set(out[w == 0].tolist())) == 1 and len(set(out[w == 1].tolist())) == 1
    assert sorted({int(out[w == 0][0]), int(out[w == 1][0])}) == [-1, 5]  # one keeps 5, the other is new
    pinned = (w == 1) & (np.array(edit)[two] == "original")  # a face the user placed, of person 1
    out = cluster(e, np.full(len(e), 5), ~pinned)
    assert (out[w == 1] == 5).all() and (out[w == 0] == -1).all()


def test_confident_faces_are_placed_without_a_graph(faces) -> None:  # type: ignore[no-untyped-def]
    """With each person's original clustered, every edited copy of persons 0 and 1 is surely theirs (and the
    label is the one Chinese whispers gives); a face of a person nobody was clustered as is not sure; a face
    with a same-person edge into two clusters is not sure."""
    emb, who, edit = faces
    originals = np.array([e == "original" for e in edit])
    labels = np.where(originals & (who < 2), 20 + who, -1)
    rows = np.flatnonzero(labels < 0)
    got = dict(zip(rows.tolist(), confident(emb, labels, rows).tolist()))
    assert all(got[i] == 20 + who[i] for i in rows if who[i] < 2)
    assert all(got[i] == -1 for i in rows if who[i] == 2)
    whispers = cluster(emb, labels, labels < 0)
    assert all(whispers[i] == got[i] for i in rows if got[i] >= 0)
    # person 0 split in two clusters (its mirror, its other edits): its original has edges into both
    two = np.where(who == 0, 30, -1)
    two[np.array([e == "mirror" for e in edit]) & (who == 0)] = 20
    original = np.flatnonzero((who == 0) & originals)
    two[original] = -1
    assert (confident(emb, two, original) == -1).all()


def test_a_face_between_two_clusters_is_a_bridge() -> None:
    rng = np.random.default_rng(0)
    b = np.zeros(128, np.float32)
    b[0] = 1.0
    ga = rng.normal(scale=0.01, size=(6, 128)).astype(np.float32)
    gb = b + rng.normal(scale=0.01, size=(6, 128)).astype(np.float32)
    emb = np.concatenate([ga, gb, (b / 2)[None, :]])
    labels = np.array([1] * 6 + [2] * 6 + [-1])
    graph = neighbour_graph(emb, [12])
    assert bridges(graph, labels, [12], np.ones(13, bool)) == {1, 2}
    assert bridges(graph, labels, [12], labels != 2) == set()  # person 2 named: nothing to re-cluster


def test_a_new_face_bridging_two_clusters_of_one_person_rejoins_them(faces) -> None:  # type: ignore[no-untyped-def]
    """Person 0's faces split over two unnamed clusters (as a merge undone would leave them), the other people
    clustered, person 0's original new: it bridges the two, so just those two clusters are re-clustered with
    it and become one person; the others are not touched. Named (fixed) clusters are never re-clustered."""
    emb, who, edit = faces
    originals = np.array([e == "original" for e in edit])
    labels = 10 + who
    labels[(who == 0) & np.isin(edit, ["mirror", "crop10"])] = 30
    new = (who == 0) & originals
    labels[new] = -1
    out, stats = place_new(emb, labels, new, np.zeros(len(emb), bool))
    assert stats["confident"] == 0 and stats["reclustered"] == int((who == 0).sum()) - 1
    assert len(set(out[who == 0].tolist())) == 1 and out[who == 0][0] in (10, 30)
    assert (out[who > 0] == labels[who > 0]).all()
    fixed = (who == 0) & ~new
    kept, stats = place_new(emb, labels, new, fixed)
    assert stats["reclustered"] == 0 and (kept[fixed] == labels[fixed]).all()
