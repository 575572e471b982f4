"""Tests for the ImageNet keyword vocabulary (lookalike.models.vocab)."""

from __future__ import annotations

import pytest

from lookalike.models.vocab import (
    ClassNames,
    ImageNetClass,
    Vocabulary,
    hypernym_weight,
    load_classes,
    normalize,
    singular_forms,
)

DOMESTIC_CATS = {281, 282, 283, 284, 285}
DOG_RANGE = set(range(151, 269))  # the ImageNet dog breeds


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary()


# -- data file ---------------------------------------------------------------


def test_thousand_classes_in_order():
    classes = load_classes()
    assert len(classes) == 1000
    assert [c.index for c in classes] == list(range(1000))
    assert len({c.wnid for c in classes}) == 1000
    assert all(isinstance(c, ImageNetClass) for c in classes)
    assert load_classes() is classes  # cached


def test_the_names_file_says_what_the_json_says():
    """models/data/imagenet_names.tsv (captions at index time) is the JSON's names, as scripts/gen_vocab.py
    writes both: the two describe every class alike, also through a Vocabulary."""
    names, full = ClassNames(), Vocabulary()
    for c in load_classes():
        assert names.describe(c.index) == full.describe(c.index) == {
            "index": c.index, "wnid": c.wnid, "name": c.name, "words": list(c.words)}


def test_fields_well_formed():
    for c in load_classes():
        assert c.wnid.startswith("n") and len(c.wnid) == 9 and c.wnid[1:].isdigit()
        assert c.name
        assert c.words and all(w == w.lower() and "_" not in w for w in c.words)
        assert all(isinstance(w, str) and isinstance(d, int) and d >= 1 for w, d in c.hypernyms)
        assert c.gloss


@pytest.mark.parametrize(
    "index, wnid, word",
    [
        (0, "n01440764", "tench"),
        (11, "n01531178", "goldfinch"),
        (207, "n02099601", "golden retriever"),
        (281, "n02123045", "tabby"),
        (285, "n02124075", "egyptian cat"),
        (504, "n03063599", "coffee mug"),
        (967, "n07920052", "espresso"),
    ],
)
def test_spot_checks(index, wnid, word):
    c = load_classes()[index]
    assert c.wnid == wnid
    assert word in c.words


def test_hypernyms_shortest_distance_and_generic_dropped():
    tabby = load_classes()[281]
    hyp = dict(tabby.hypernyms)
    assert hyp["domestic cat"] == 1
    assert hyp["cat"] == 2
    assert "mammal" in hyp and "animal" in hyp
    for generic in ("entity", "physical entity", "object", "whole", "thing", "matter"):
        assert generic not in hyp
    assert "tabby" not in hyp  # own lemmas are not repeated as hypernyms


def test_fruit_reached_through_edible_fruit():
    assert "fruit" in dict(load_classes()[949].hypernyms)  # strawberry


# -- helpers -----------------------------------------------------------------


def test_normalize():
    assert normalize("  Golden   RETRIEVER!! ") == "golden retriever"
    assert normalize("Jack-o'-Lantern") == "jack o lantern"
    assert normalize("...") == ""


@pytest.mark.parametrize(
    "word, expected",
    [("cats", "cat"), ("puppies", "puppy"), ("boxes", "box"), ("glasses", "glass"),
     ("wolves", "wolf"), ("mice", "mouse"), ("horses", "horse")],
)
def test_singular_forms(word, expected):
    assert expected in singular_forms(word)


@pytest.mark.parametrize("word", ["glass", "cactus", "cat", "bus", "iris"])
def test_singular_forms_leaves_singulars(word):
    assert singular_forms(word) == []


def test_hypernym_weight_decays_with_floor():
    assert hypernym_weight(1) == hypernym_weight(2) < 1.0
    assert hypernym_weight(3) < hypernym_weight(2)
    assert hypernym_weight(50) == 0.5


# -- match -------------------------------------------------------------------


def _in_range(m: dict[int, float]) -> bool:
    return all(0.0 < w <= 1.0 for w in m.values())


@pytest.mark.parametrize("query", ["cat", "cats", "Cats", "CAT!", "a photo of a cat"])
def test_cat(vocab, query):
    m = vocab.match(query)
    assert DOMESTIC_CATS <= m.keys()
    assert not (m.keys() & DOG_RANGE)
    assert _in_range(m)


def test_dog(vocab):
    m = vocab.match("dog")
    assert len(m) > 100
    assert 207 in m
    assert len(m.keys() & DOG_RANGE) >= 115
    assert not (m.keys() & DOMESTIC_CATS)
    assert vocab.match("dogs").keys() == m.keys()
    assert _in_range(m)


def test_vehicle(vocab):
    m = vocab.match("vehicle")
    assert {817, 671} <= m.keys()  # sports car, mountain bike
    assert 11 not in m


def test_fruit(vocab):
    m = vocab.match("fruit")
    # strawberry, orange, lemon, fig, pineapple, banana, pomegranate, granny smith
    assert {949, 950, 951, 952, 953, 954, 957, 948} <= m.keys()
    assert 207 not in m


def test_bird(vocab):
    m = vocab.match("bird")
    assert 11 in m  # goldfinch
    assert len(m) > 50
    assert not (m.keys() & DOG_RANGE)


def test_coffee(vocab):
    m = vocab.match("coffee")
    assert {967, 504} <= m.keys()
    assert m[967] > m[504]


def test_own_lemma_outweighs_hypernym(vocab):
    m = vocab.match("espresso")
    assert m[967] == 1.0
    assert all(w < 1.0 for i, w in m.items() if i != 967)  # e.g. espresso maker
    tabby = vocab.match("tabby")
    assert tabby[281] == 1.0  # the tabby cat; WordNet's other sense (a female cat) reaches the other cats
    assert all(w < 0.5 for i, w in tabby.items() if i != 281)


def test_phrase_beats_parts(vocab):
    m = vocab.match("golden retriever")
    assert m == {207: 1.0}
    assert vocab.match("Golden Retrievers") == {207: 1.0}
    assert vocab.match("sports cars") == {817: 1.0}


def test_multiple_terms_combine(vocab):
    m = vocab.match("cat and dog")
    assert DOMESTIC_CATS <= m.keys()
    assert 207 in m


def test_plural_es_and_ies(vocab):
    assert 709 in vocab.match("boxes")  # pencil box
    assert 207 in vocab.match("puppies")
    assert 837 in vocab.match("glasses")  # sunglasses (via "spectacles, glasses")
    g = vocab.match("glasses")
    assert g[837] >= max(g.values())


def test_unknown_and_empty(vocab):
    assert vocab.match("xyzzyqwert") == {}
    assert vocab.match("") == {}
    assert vocab.match("   !!! ") == {}
    assert vocab.match("the") == {}


def test_wnid_and_exact_name(vocab):
    assert vocab.match("n02123045") == {281: 1.0}
    assert vocab.match("N02123045") == {281: 1.0}
    assert vocab.match("nonexistent n99999999") == {}
    name = vocab.describe(134)["name"]
    assert vocab.match(name) == {134: 1.0}


def test_whole_word_only(vocab):
    # "cat" must not match "catamaran" or "caterpillar"-like substrings: every class comes through the word
    # itself (a name, a kind, or one of WordNet's senses of "cat", such as the tracked vehicle)
    m = vocab.match_explained("cat")
    assert m and all(how.startswith("cat: ") for _, how in m.values())
    assert {281, 282, 283, 284, 285} <= {i for i, (w, _) in m.items() if w >= 0.9}


def test_terms(vocab):
    terms = vocab.terms()
    assert len(terms) == len(set(terms)) > 1000
    assert {"cat", "dog", "fruit", "vehicle", "espresso", "golden retriever"} <= set(terms)
    assert "entity" not in terms


def test_describe(vocab):
    d = vocab.describe(967)
    assert d == {"index": 967, "wnid": "n07920052", "name": "espresso", "words": ["espresso"]}


def test_custom_classes():
    classes = [
        ImageNetClass(0, "n00000001", "widget", ("widget", "gizmo"), (("tool", 1),), "a thing"),
        ImageNetClass(1, "n00000002", "blue gizmo", ("blue gizmo",), (("tool", 4),), "x"),
    ]
    v = Vocabulary(classes)
    assert v.match("gizmo") == {0: 1.0, 1: 0.6}
    m = v.match("tools")
    assert m[0] > m[1] >= 0.5
    assert v.describe(1)["name"] == "blue gizmo"
