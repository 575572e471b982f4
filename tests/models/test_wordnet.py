"""All WordNet nouns -> ImageNet classes (models/wordnet.py, data from scripts/gen_wordnet.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.models import wordnet
from lookalike.models.vocab import Vocabulary


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary()


def names(vocab: Vocabulary, word: str, min_weight: float = 0.0) -> dict[str, tuple[float, str]]:
    return {vocab.describe(c)["name"]: (w, how) for c, (w, how) in vocab.match_explained(word).items()
            if w >= min_weight}


def test_shipped_lexicon_is_small_and_read_one_bucket_at_a_time() -> None:
    lex = wordnet.Lexicon()
    path = Path(wordnet.__file__).parent / "data" / wordnet.DATA_FILE
    assert path.stat().st_size < 1_500_000
    assert lex.items("windmill")
    assert len(lex._buckets) <= 1 + (wordnet._bucket("windmill", wordnet.BUCKETS) != 0)
    assert lex.meta["lemmas"] > 60_000 and "meaning" in lex.vias


@pytest.mark.parametrize("word, expected, via", [
    ("wheel", {"car wheel"}, "wheel: kind"),  # a kind of wheel ...
    ("wheel", {"tricycle", "forklift"}, "wheel: part of"),  # ... and what wheels are part of
    ("beach", {"seashore"}, "beach: meaning"),  # also "part of" the shore (0.54)
    ("architecture", {"church", "palace"}, "architecture: broader"),
    ("pliers", {"screwdriver", "can opener"}, "pliers: broader"),
    ("cutlery", {"wooden spoon", "cleaver"}, "cutlery: kind"),
    ("insect", {"ladybug", "bee"}, "insect: kind"),
    ("sea", {"seashore"}, "sea: meaning"),
])
def test_words_the_classes_do_not_name(vocab: Vocabulary, word: str, expected: set[str], via: str) -> None:
    found = names(vocab, word)
    assert expected <= set(found), sorted(found)
    assert all(found[n][1] == via for n in expected), {n: found[n] for n in expected}


def test_weights_say_how_direct_the_link_is(vocab: Vocabulary) -> None:
    wheel = names(vocab, "wheel")
    assert wheel["car wheel"][0] > wheel["tricycle"][0] > 0.2
    # "windmill" has no class of its kind: only weak links (broader kinds: machines; the sentence model's
    # reading of its definition: a reel, 0.6), none as strong as a name or a kind
    windmill = names(vocab, "windmill")
    assert max(w for w, _ in windmill.values()) < 0.9
    assert not any(via.endswith((": kind", ": name")) for _, via in windmill.values())


def test_irregular_plurals_and_unknown_words(vocab: Vocabulary) -> None:
    assert names(vocab, "mice") and names(vocab, "geese")
    assert vocab.match("xqzzyvv") == {}
    assert vocab.match("entity") == {}  # too generic: reaches nothing rather than everything


def test_write_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "wn.bin"
    size = wordnet.write(path, ["a", "b"], [[(0, 0), (1, 1)], [(2, 0)]],
                         {"gizmo": [(0, 1.0, "kind")], "gadget": [(1, 0.5, "part of"), (0, 0.3, "broader")]},
                         {"gizmoes": "gizmo"}, {"source": "test"})
    assert size == path.stat().st_size
    lex = wordnet.Lexicon(path)
    assert lex.lookup("gizmo") == {0: (1.0, "kind"), 1: (0.9, "kind")}
    assert lex.lookup("gizmoes") == lex.lookup("gizmo")
    assert lex.lookup("gadget") == {2: (0.5, "part of"), 0: (0.3, "broader"), 1: (0.27, "broader")}
    assert lex.lookup("nothing") == {} and "gadget" in lex and "nothing" not in lex


def test_custom_classes_do_not_use_the_lexicon() -> None:
    from lookalike.models.vocab import ImageNetClass

    v = Vocabulary([ImageNetClass(0, "n00000001", "widget", ("widget",), (), "x")])
    assert v.lexicon is None and v.match("wheel") == {}


def test_no_term_is_longer_than_the_phrases_a_query_is_looked_up_in(vocab: Vocabulary) -> None:
    """Query phrases are looked up up to MAX_PHRASE_WORDS words long: no lemma or class term may be longer,
    or it could never be found."""
    from lookalike.models.vocab import MAX_PHRASE_WORDS

    lemmas = list(wordnet.Lexicon().lemmas())
    assert len(lemmas) > 60_000  # WordNet 3.0 has ~117,000 noun lemmas; this is every one the file keeps
    longest = max(len(t.split()) for t in [*lemmas, *vocab.terms()])
    assert longest == MAX_PHRASE_WORDS  # equal: a smaller cap would lose lemmas, a larger one costs lookups


def test_a_long_query_costs_lookups_in_proportion_to_its_words(vocab: Vocabulary, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A longest lemma (9 words) is still found inside a long query, and 600 words take at most 9 phrase
    lookups a word (all runs of words up to the cap), not the ~180,000 of every run."""
    calls = []
    real = vocab._match_phrase
    monkeypatch.setattr(vocab, "_match_phrase", lambda tokens: calls.append(len(tokens)) or real(tokens))
    lemma = "cooper union for the advancement of science and art"
    alone = vocab.match_explained(lemma)
    assert alone and all(how.startswith(lemma) for _, how in alone.values())
    calls.clear()
    m = vocab.match_explained("xq " * 300 + lemma + " zv" * 291)
    assert {c: w for c, (w, _) in m.items()} == {c: w for c, (w, _) in alone.items()}
    assert len(calls) <= 9 * 600 and max(calls) == 9
