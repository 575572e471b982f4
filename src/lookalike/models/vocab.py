"""Keyword vocabulary for the 1000 ImageNet-1k classes.

Maps a user's keyword query ("cat", "dogs", "vehicle", "golden retriever",
"n02123045") to weighted class indices of the ImageNet classifier.  The data
comes from ``data/imagenet_classes.json``, generated from WordNet 3.0 by
``scripts/gen_vocab.py``.  Standard library only.

Weights (per matched term, in (0, 1]):

* a lemma (synonym) of the class itself, its display name or wnid: ``1.0``
* a lemma of an ancestor synset at hypernym distance ``d``:
  ``0.9`` for ``d <= 2``, then ``-0.03`` per extra level, never below ``0.5``
* a whole word / contiguous sub-phrase of a multi-word class lemma
  ("coffee" in "coffee mug"): ``0.6``

If a word only matches after singularisation although its literal form matched
something else, the singular-only matches are scaled by ``0.9`` (so "glasses"
prefers sunglasses over drinking glasses).  Several terms in one query are
combined with a noisy-OR, ``1 - prod(1 - w)``, so classes hit by several terms
rank higher and weights stay within (0, 1].
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import json
import re
from dataclasses import dataclass

__all__ = ["ImageNetClass", "Vocabulary", "load_classes", "normalize", "singular_forms"]

DIRECT_WEIGHT = 1.0
PARTIAL_WEIGHT = 0.6
SINGULAR_ONLY_FACTOR = 0.9
_MAX_VARIANTS = 16

# Never matched on their own (they may still be part of a longer phrase).
STOPWORDS = frozenset(
    """a an the of and or with without in on at to for from by into onto some any
    my me i show find search give get all photo photos picture pictures image images
    pic pics""".split()
)

_IRREGULAR = {
    "mice": "mouse", "geese": "goose", "teeth": "tooth", "feet": "foot",
    "men": "man", "women": "woman", "children": "child", "people": "person",
    "oxen": "ox", "lice": "louse", "cacti": "cactus", "fungi": "fungus",
    "octopi": "octopus", "knives": "knife", "wolves": "wolf", "leaves": "leaf",
    "loaves": "loaf", "halves": "half", "shelves": "shelf", "calves": "calf",
    "buses": "bus", "dice": "die",
}

# Colloquial words WordNet does not connect to the ImageNet classes; looked up
# like a singularised variant of the query word.
ALIASES = {
    "puppy": "dog", "pup": "dog", "doggy": "dog", "doggie": "dog", "doggo": "dog",
    "kitten": "domestic cat", "kitty": "domestic cat", "kittycat": "domestic cat",
    "bunny": "rabbit", "veggie": "vegetable", "veggies": "vegetable",
}

_WNID_RE = re.compile(r"^n\d{8}$")


def hypernym_weight(distance: int) -> float:
    """Weight of a match through an ancestor ``distance`` levels up."""
    if distance <= 2:
        return 0.9
    return max(0.5, round(0.9 - 0.03 * (distance - 2), 4))


def normalize(text: str) -> str:
    """Lowercase, drop apostrophes, other punctuation -> space, collapse spaces."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def singular_forms(word: str) -> list[str]:
    """Naive English singular candidates of ``word`` (may be empty)."""
    if word in _IRREGULAR:
        return [_IRREGULAR[word]]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return []
    if word.endswith("ies") and len(word) > 4:
        return [word[:-3] + "y", word[:-1]]
    if word.endswith("ves"):
        return [word[:-3] + "f", word[:-3] + "fe", word[:-1]]
    if word.endswith(("ses", "xes", "zes", "ches", "shes", "oes")):
        return [word[:-2], word[:-1]]
    return [word[:-1]]


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str
    name: str
    words: tuple[str, ...]
    hypernyms: tuple[tuple[str, int], ...]
    gloss: str


@functools.cache
def load_classes() -> list[ImageNetClass]:
    """The 1000 classes in classifier order (cached; do not mutate the list)."""
    res = importlib.resources.files("lookalike.models").joinpath("data", "imagenet_classes.json")
    data = json.loads(res.read_text(encoding="utf-8"))
    return [
        ImageNetClass(
            index=int(c["index"]),
            wnid=c["wnid"],
            name=c["name"],
            words=tuple(c["words"]),
            hypernyms=tuple((w, int(d)) for w, d in c["hypernyms"]),
            gloss=c.get("gloss", ""),
        )
        for c in data["classes"]
    ]


def _keys(phrase: str) -> set[str]:
    """Normalised index keys of a lemma: spaced form plus hyphen-joined form."""
    keys = {normalize(phrase)}
    if "-" in phrase:
        keys.add(normalize(phrase.replace("-", "")))
    keys.discard("")
    return keys


class Vocabulary:
    """Keyword -> weighted ImageNet class indices."""

    def __init__(self, classes: list[ImageNetClass] | None = None) -> None:
        self.classes: list[ImageNetClass] = list(load_classes() if classes is None else classes)
        self._by_index = {c.index: c for c in self.classes}
        self._direct: dict[str, set[int]] = {}
        self._hyper: dict[str, dict[int, int]] = {}
        self._partial: dict[str, set[int]] = {}
        self._terms: set[str] = set()
        for c in self.classes:
            own = set()
            for phrase in (*c.words, c.name):
                own |= _keys(phrase)
            own.add(c.wnid.lower())
            for key in own:
                self._direct.setdefault(key, set()).add(c.index)
                tokens = key.split()
                for n in range(1, len(tokens)):
                    for i in range(len(tokens) - n + 1):
                        sub = " ".join(tokens[i : i + n])
                        if sub not in STOPWORDS:
                            self._partial.setdefault(sub, set()).add(c.index)
            self._terms |= {normalize(w) for w in (*c.words, c.name)}
            for word, dist in c.hypernyms:
                self._terms.add(normalize(word))
                for key in _keys(word):
                    slot = self._hyper.setdefault(key, {})
                    if c.index not in slot or dist < slot[c.index]:
                        slot[c.index] = dist
        self._terms.discard("")

    # -- lookup -----------------------------------------------------------
    def _lookup(self, key: str) -> dict[int, float]:
        """Weights for one exact normalised term (max over match kinds)."""
        out: dict[int, float] = {}
        for idx in self._partial.get(key, ()):
            out[idx] = PARTIAL_WEIGHT
        for idx, dist in self._hyper.get(key, {}).items():
            w = hypernym_weight(dist)
            if w > out.get(idx, 0.0):
                out[idx] = w
        for idx in self._direct.get(key, ()):
            out[idx] = DIRECT_WEIGHT
        return out

    def _variants(self, tokens: list[str]) -> list[str]:
        """Singularised / aliased variants of a phrase (literal form excluded)."""
        seen = {" ".join(tokens)}
        out: list[str] = []
        last = singular_forms(tokens[-1])
        for s in last:
            out.append(" ".join([*tokens[:-1], s]))
        if len(tokens) > 1:
            options = [[t, *singular_forms(t)] for t in tokens]
            for combo in itertools.islice(itertools.product(*options), _MAX_VARIANTS):
                out.append(" ".join(combo))
        out = [v for v in out if not (v in seen or seen.add(v))]
        aliases = [ALIASES[v] for v in (" ".join(tokens), *out) if v in ALIASES]
        return out + [a for a in aliases if not (a in seen or seen.add(a))]

    def _match_phrase(self, tokens: list[str]) -> dict[int, float]:
        literal = self._lookup(" ".join(tokens))
        derived: dict[int, float] = {}
        for variant in self._variants(tokens):
            for idx, w in self._lookup(variant).items():
                if w > derived.get(idx, 0.0):
                    derived[idx] = w
        if not literal:
            return derived
        out = dict(literal)
        for idx, w in derived.items():
            w *= SINGULAR_ONLY_FACTOR
            if w > out.get(idx, 0.0):
                out[idx] = w
        return out

    def match(self, query: str) -> dict[int, float]:
        """Class index -> weight in (0, 1]; ``{}`` when nothing matches."""
        raw = query.strip().lower()
        if _WNID_RE.match(raw):
            return {c.index: 1.0 for c in self.classes if c.wnid.lower() == raw}
        tokens = normalize(query).split()
        if not tokens:
            return {}
        consumed = [False] * len(tokens)
        misses: dict[int, float] = {}  # product of (1 - w) per class
        for n in range(len(tokens), 0, -1):
            for i in range(len(tokens) - n + 1):
                if any(consumed[i : i + n]):
                    continue
                if n == 1 and tokens[i] in STOPWORDS:
                    continue
                hits = self._match_phrase(tokens[i : i + n])
                if not hits:
                    continue
                consumed[i : i + n] = [True] * n
                for idx, w in hits.items():
                    misses[idx] = misses.get(idx, 1.0) * (1.0 - w)
        return {idx: round(1.0 - m, 6) for idx, m in misses.items() if 1.0 - m > 0.0}

    def terms(self) -> list[str]:
        """Every distinct known word/phrase (class lemmas, names, hypernyms)."""
        return sorted(self._terms)

    def describe(self, index: int) -> dict:
        """Short description of a class for showing tags to users."""
        c = self._by_index[index]
        return {"index": c.index, "wnid": c.wnid, "name": c.name, "words": list(c.words)}
