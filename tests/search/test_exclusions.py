"""``-word`` in a text query: photos the word's own search gives P >= EXCLUDE_P are left out (search/run.py),
on real photos (the shared CORE_PHOTOS library); the query syntax (search/plan.py); the CLI's reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.errors import LookalikeError
from lookalike.library import Library
from lookalike.search.plan import split_exclusions
from lookalike.search.run import EXCLUDE_P


@pytest.mark.parametrize("text,kept,words", [
    ("beach -people", "beach", ["people"]),
    ('cat -dog -"hot dog"', "cat", ["dog", "hot dog"]),
    ("-dog animal", "animal", ["dog"]),
    ("t-shirt", "t-shirt", []),  # a hyphen inside a word
    ("red-eye -night", "red-eye", ["night"]),
    ("cat -3", "cat -3", []),  # before a digit
    ("cat - dog", "cat - dog", []),  # a lone dash
])
def test_split_exclusions(text: str, kept: str, words: list[str]) -> None:
    assert split_exclusions(text) == (kept, words)


def stems(res) -> list[str]:  # type: ignore[no-untyped-def]
    return [Path(r.path).stem for r in res.results]


def test_a_word_left_out(indexed: Library) -> None:
    full = indexed.search("animal", limit=16)
    cats = {h.id for h in indexed.search("cat", limit=16).results if h.score >= EXCLUDE_P}
    assert {"chelsea", "black_cat"} <= set(stems(full)) and cats
    res = indexed.search("animal -cat", limit=16)
    assert res.query == "animal -cat" and res.kind == "text"
    assert not {"chelsea", "black_cat"} & set(stems(res))
    assert {"puppy", "gold_fish"} <= set(stems(res))  # the other animals stay, in their order
    kept = [s for s in stems(full) if s not in ("chelsea", "black_cat")]
    assert stems(res) == kept[:len(stems(res))]
    x = res.explain["excluded"]
    assert {k: x[k] for k in ("words", "min_probability", "relative", "photos")} == {
        "words": {"cat": len(cats)}, "min_probability": EXCLUDE_P, "relative": True, "photos": len(cats)}
    assert x["from_results"] >= 2  # the two cats at least, from the longer list searched
    # the limit is still filled after the exclusion
    assert len(indexed.search("animal -cat", limit=3).results) == 3


def test_with_an_example_image_only_the_exclusion(indexed: Library, photos: Path) -> None:
    plain = stems(indexed.search(image=photos / "chelsea.jpg", limit=5))
    assert "black_cat" in plain
    res = indexed.search("-cat", image=photos / "chelsea.jpg", limit=5)
    assert res.kind == "image_path" and not {"chelsea", "black_cat"} & set(stems(res))


def test_only_exclusions_is_an_error(indexed: Library) -> None:
    with pytest.raises(LookalikeError, match=r"only leaves out \(-cat -dog\)"):
        indexed.search("-cat -dog")


def test_the_cli_reads_minus_word_as_a_query_word() -> None:
    from lookalike.cli import build_parser

    p = build_parser()
    ns = p.parse_args(["search", "cat", "--limit", "5", "-dog", "-night"])
    assert ns.query == ["cat", "-dog", "-night"] and ns.limit == 5  # "-night" is no -n value
    assert p.parse_args(["search", "-n5", "cat"]).limit == 5
    assert p.parse_args(["search", "cat", "-0"]).null  # an option stays one
    with pytest.raises(SystemExit):
        p.parse_args(["search", "cat", "-limit"])  # a long option with one dash: an error, not a word
