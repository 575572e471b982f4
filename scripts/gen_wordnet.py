#!/usr/bin/env python3
"""Generate ``src/lookalike/models/data/wordnet_nouns.bin``: every WordNet 3.0 noun -> weighted ImageNet classes.

``scripts/gen_vocab.py`` gives the 1000 classes their own lemmas and their hypernyms' lemmas, so "dog" and
"vehicle" work, but a noun with no class below it ("windmill", "architecture", "livestock", "beach") matched
nothing. This script walks all 82,115 noun synsets and gives each the classes it can reach, each through one
relation, with a weight in (0, 1] (the constants below; see :mod:`lookalike.models.wordnet` for the runtime
side and the file format):

=============  =====================================================================  ==================
via            relation (S = the synset of the query word)                             weight
=============  =====================================================================  ==================
``kind``       the class is S or a hyponym of S at distance d                          1.0, then 0.9 ..
                                                                                        0.5 (hypernym_weight)
``part of``    S is a part / member / substance of H (holonym): H's classes            x HOLONYM
``has part``   P is a part / member of S (meronym): P's classes                        x MERONYM
``topic``      X is in S's topic/region/usage domain ("architecture" -> dome, arch)    x DOMAIN
``related``    a derivationally related noun                                           x RELATED
``broader``    S has no class below it: the classes under its nearest ancestor that    x BROADER, less
               has some (siblings and cousins: "windmill" -> other mills/buildings)    for big ancestors
``gloss``      a noun of S's definition ("a mill that is powered by the wind")         x GLOSS
``meaning``    the sentence model's nearest class descriptions to "lemmas: gloss"      x MEANING
=============  =====================================================================  ==================

A relation reaches a synset's *kind* classes only (no chains of relations). Per class the largest weight
wins. A lemma with several senses takes every sense, each scaled by how often WordNet's sense-tagged corpus
used it (``cntlist.rev``): ``((count + 1) / (count of the lemma's most used sense + 1)) ** SENSE_POWER``, at
least ``SENSE_FLOOR`` (room 116/10/3 -> 1.0, 0.31, 0.3; flower 31/8 -> 1.0, 0.53; cow 20/1 -> 1.0, 0.31).
A lemma the corpus never tagged keeps the position rule used before (the n-th sense x ``SENSE_DECAY[n]``,
x ``RARE_SENSE`` for an untagged sense of a tagged lemma). On the tuxpaint keyword set the counts moved
precision@10 with synonyms from 0.707 to 0.710 ("cow" 0.9 -> 1.0; AP 0.619 -> 0.623), the same for
SENSE_POWER 0.3-1.0 and floors 0.2-0.5 (0.5 / 0.3 chosen from the middle of that plateau). A lemma that
reaches kinds of classes directly takes no ``broader`` or ``gloss`` relation from any of its senses. Weights below ``MIN_WEIGHT`` are dropped; at most ``MAX_ITEMS`` anchors per lemma.

The constants were set by looking at the issue's words (architecture, building, monument, livestock,
cutlery, furniture, beach, insect, windmill, mill, pliers, wheel) and checked on the tuxpaint keyword set
(bench/keyword_quality.py); they are not fitted per word.

Needs Debian's ``wordnet-base`` (``apt-get install wordnet-base`` -> /usr/share/wordnet) and, for the
``meaning`` relation, the sentence model (the ``extras`` extra; ``--no-meaning`` skips it). Run from the
repository root::

    python scripts/gen_wordnet.py [--wordnet-dir /usr/share/wordnet] [--out src/lookalike/models/data/wordnet_nouns.bin]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import deque
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "src"))

from lookalike.models import wordnet  # noqa: E402
from lookalike.models.vocab import hypernym_weight, load_classes, normalize  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "src" / "lookalike" / "models" / "data" / wordnet.DATA_FILE

HOLONYM = 0.6
MERONYM = 0.35
DOMAIN = 0.5
RELATED = 0.5
BROADER = 0.5  # x BROADER_DECAY per level above the first, x sqrt(BROADER_SIZE / classes) above that size
BROADER_DECAY = 0.85
BROADER_SIZE = 20
GLOSS = 0.35
GLOSS_MAX_CLASSES = 60  # gloss nouns that reach more classes than this ("object", "animal") are left out
MEANING = 0.6
SENSE_DECAY = (1.0, 0.85, 0.75, 0.7)  # then SENSE_DECAY[-1] for later senses
RARE_SENSE = 0.6  # x for a sense never seen in WordNet's sense-tagged corpus, when the lemma has seen ones
# Sense weights from WordNet's own sense-tagged counts (cntlist.rev): the n-th sense of a lemma weighs
# ((count_n + 1) / (count_top + 1)) ** SENSE_POWER, at least SENSE_FLOOR; SENSE_DECAY/RARE_SENSE when off (0)
SENSE_POWER = 0.5
SENSE_FLOOR = 0.3
MIN_WEIGHT = 0.2
MAX_ITEMS = 48

# The gen_vocab.py list of too-generic ancestors: their lemmas reach nothing ("object" would be everything).
DROPPED = {"00001740", "00001930", "00002137", "00002452", "04424418", "00002684", "00003553", "00007347",
           "00020827", "00020090", "00019613", "15046900", "03892891", "13809207", "00031921", "00033020",
           "00024264", "00027807", "03932203", "14580897", "14778436", "00027167", "08620061", "00019128"}

HOLO = {"#m", "#s", "#p"}
MERO = {"%m", "%s", "%p"}
DOMAIN_MEMBERS = {"-c", "-r", "-u"}
MARKER_RE = re.compile(r"\([a-z]+\)$")
GLOSS_STOP = set("""a an the of and or with without in on at to for from by into onto as that which who is are
    be used usually especially any some one two its it their this something someone thing things kind sort type
    part parts form forms way ways having has made make use""".split())


def parse_data(path: Path) -> dict[str, tuple[list[str], list[tuple[str, str]], str]]:
    """offset -> (lemmas, [(pointer symbol, target offset)] to nouns, definition)."""
    out: dict[str, tuple[list[str], list[tuple[str, str]], str]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith(" "):
                continue
            data, _, gloss = line.partition(" | ")
            parts = data.split()
            n = int(parts[3], 16)
            lemmas = [MARKER_RE.sub("", parts[4 + 2 * i]).replace("_", " ").strip().lower() for i in range(n)]
            pos = 4 + 2 * n
            ptrs = []
            for _ in range(int(parts[pos])):
                sym, target, tpos = parts[pos + 1], parts[pos + 2], parts[pos + 3]
                pos += 4
                if tpos == "n":
                    ptrs.append((sym, target))
            definition = re.split(r';\s*"', gloss, maxsplit=1)[0].strip().rstrip(";").strip()
            out[parts[0]] = (lemmas, ptrs, definition)
    return out


def parse_index(path: Path, tagged: set[str] | None = None, counts: dict[str, int] | None = None
                ) -> dict[str, list[str]]:
    """lemma (normalised) -> synset offsets in WordNet's sense (frequency) order. ``tagged`` receives the
    senses seen in WordNet's sense-tagged corpus (the common ones)."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith(" "):
                continue
            parts = line.split()
            lemma = normalize(parts[0].replace("_", " "))
            n_syn, n_ptr = int(parts[2]), int(parts[3])
            offsets = parts[6 + n_ptr: 6 + n_ptr + n_syn]
            if tagged is not None:
                tagged.update(offsets[: int(parts[5 + n_ptr])])
            if counts is not None and lemma:
                counts[lemma] = max(counts.get(lemma, 0), int(parts[5 + n_ptr]))
            if lemma:
                out.setdefault(lemma, [])
                out[lemma] += [o for o in offsets if o not in out[lemma]]
    return out


def parse_exceptions(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                out.setdefault(normalize(parts[0].replace("_", " ")), normalize(parts[1].replace("_", " ")))
    return out


def kind_classes(synsets, class_offsets: list[str]) -> dict[str, dict[int, int]]:
    """offset -> {class index: hyponym distance} for every synset with classes at or below it."""
    down: dict[str, dict[int, int]] = {}
    for idx, off in enumerate(class_offsets):
        down.setdefault(off, {})[idx] = 0
        seen, queue = {off}, deque([(off, 0)])
        while queue:
            cur, d = queue.popleft()
            for sym, h in synsets[cur][1]:
                if sym in ("@", "@i") and h not in seen:
                    seen.add(h)
                    slot = down.setdefault(h, {})
                    if idx not in slot or d + 1 < slot[idx]:
                        slot[idx] = d + 1
                    queue.append((h, d + 1))
    for off in DROPPED:
        down.pop(off, None)
    return down


def broader(off: str, synsets, down) -> tuple[str, int] | None:
    """The nearest ancestor with classes below it, and how many levels up."""
    seen, queue = {off}, deque([(off, 0)])
    while queue:
        cur, d = queue.popleft()
        for sym, h in synsets[cur][1]:
            if sym in ("@", "@i") and h not in seen:
                if h in down:
                    return h, d + 1
                seen.add(h)
                queue.append((h, d + 1))
    return None


def gloss_nouns(definition: str, index: dict[str, list[str]]) -> list[str]:
    """Nouns of a definition, longest phrases first (two-word phrases, then words)."""
    toks = [t for t in normalize(definition).split()]
    out, used = [], set()
    for n in (3, 2, 1):
        for i in range(len(toks) - n + 1):
            if any(j in used for j in range(i, i + n)):
                continue
            phrase = " ".join(toks[i:i + n])
            if (n == 1 and (phrase in GLOSS_STOP or len(phrase) < 3)) or phrase not in index:
                continue
            used.update(range(i, i + n))
            out.append(phrase)
    return out


WEAK_VIAS = ("broader", "gloss")  # not taken by a lemma that names kinds of classes


def parse_counts(path: Path) -> dict[str, dict[int, int]]:
    """lemma -> {noun sense number (1-based): times tagged in WordNet's corpus} from ``cntlist.rev``."""
    out: dict[str, dict[int, int]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, rest = line.partition(" ")
        lemma, _, sense = key.partition("%")
        parts = rest.split()
        if sense.startswith("1:") and len(parts) == 2:
            slot = out.setdefault(normalize(lemma.replace("_", " ")), {})
            slot[int(parts[0])] = slot.get(int(parts[0]), 0) + int(parts[1])
    return out


def sense_weight(n: int, n_tagged: int, counts: dict[int, int] | None) -> float:
    """Weight of a lemma's n-th sense (0-based): from the tagged counts when SENSE_POWER is on and the lemma
    has any, else by position (SENSE_DECAY, x RARE_SENSE for a sense the corpus never used)."""
    if SENSE_POWER > 0 and counts:
        top = max(counts.values())
        return max(SENSE_FLOOR, ((counts.get(n + 1, 0) + 1) / (top + 1)) ** SENSE_POWER)
    return SENSE_DECAY[min(n, len(SENSE_DECAY) - 1)] * (RARE_SENSE if n_tagged and n >= n_tagged else 1.0)


def synset_items(off, synsets, down, index, meaning) -> dict[str, tuple[float, str]]:
    """Anchor offset -> (factor, via) for one synset: its own anchor and the anchors of its relations."""
    lemmas, ptrs, definition = synsets[off]
    items: dict[str, tuple[float, str]] = {}

    def put(anchor: str, factor: float, via: str) -> None:
        if anchor in down and factor >= MIN_WEIGHT and factor > items.get(anchor, (0.0, ""))[0]:
            items[anchor] = (round(factor, 3), via)

    put(off, 1.0, "kind")
    for sym, t in ptrs:
        if sym in HOLO:
            put(t, HOLONYM, "part of")
        elif sym in MERO:
            put(t, MERONYM, "has part")
        elif sym in DOMAIN_MEMBERS:
            put(t, DOMAIN, "topic")
        elif sym == "+":
            put(t, RELATED, "related")
    if off not in down:
        up = broader(off, synsets, down)
        if up is not None:
            anc, levels = up
            size = len(down[anc])
            factor = BROADER * BROADER_DECAY ** (levels - 1) * min(1.0, (BROADER_SIZE / size) ** 0.5)
            put(anc, factor, "broader")
        for noun in gloss_nouns(definition, index):
            first = index[noun][0]
            if first in down and len(down[first]) <= GLOSS_MAX_CLASSES and first != off:
                put(first, GLOSS, "gloss")
    for cls_off, w in meaning.get(off, {}).items():
        put(cls_off, MEANING * w, "meaning")
    return items


def meanings(synsets, class_offsets, wanted: list[str], cache: Path | None, batch: int = 256
             ) -> dict[str, dict[str, float]]:
    """offset -> {class offset: weight} from the sentence model (the runtime's ClassIndex.nearest) for the
    ``wanted`` synsets; results are kept in ``cache`` (JSON) so that re-running with other constants is fast."""
    from lookalike.progress import progress_bar
    from lookalike.search.keywords import class_index

    out: dict[str, dict[str, float]] = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    todo = [o for o in wanted if o not in out]
    if todo:
        idx = class_index()
        with progress_bar(len(todo), True, "meaning", unit="synset") as pb:
            for i in range(0, len(todo), batch):
                chunk = todo[i:i + batch]
                texts = [f"{', '.join(synsets[o][0][:2])}: {' '.join(synsets[o][2].split()[:24])}" for o in chunk]
                for o, near in zip(chunk, idx.nearest_many(texts)):
                    out[o] = {class_offsets[c]: w for c, w in near.items()}
                pb.update(len(chunk))
                if cache:
                    cache.write_text(json.dumps(out))
    return out


def build(wordnet_dir: Path, use_meaning: bool = True, cache: Path | None = None):  # type: ignore[no-untyped-def]
    synsets = parse_data(wordnet_dir / "data.noun")
    tagged: set[str] = set()
    tag_counts: dict[str, int] = {}
    index = parse_index(wordnet_dir / "index.noun", tagged, tag_counts)
    sense_counts = parse_counts(wordnet_dir / "cntlist.rev") if SENSE_POWER > 0 else {}
    exceptions = parse_exceptions(wordnet_dir / "noun.exc")
    class_offsets = [c.wnid[1:] for c in load_classes()]
    down = kind_classes(synsets, class_offsets)
    per_synset = {off: synset_items(off, synsets, down, index, {}) for off in synsets}
    if use_meaning:
        # The sentence model is slow on 2 cores (~10-30 synsets/s), so it is asked only where it can help
        # most: the common senses (tagged in WordNet's corpus) that have no class at or below them.
        weak = [o for o in sorted(tagged) if not any(v == "kind" for _, v in per_synset[o].values())]
        meaning = meanings(synsets, class_offsets, weak, cache)
        for off in weak:
            per_synset[off] = synset_items(off, synsets, down, index, meaning)
    anchors = sorted(down)
    anchor_id = {a: i for i, a in enumerate(anchors)}
    lexicon: dict[str, list[tuple[int, float, str]]] = {}
    for lemma, offs in index.items():
        best: dict[str, tuple[float, str]] = {}
        # a lemma that names kinds of classes through one of its senses ("fish", "cat") is not padded with the
        # broader kinds or gloss nouns of its other senses (fish as food -> all food; CAT scan -> instruments)
        direct = any(via == "kind" for off in offs for via in (v for _, v in per_synset[off].values()))
        n_tagged = tag_counts.get(lemma, 0)
        for n, off in enumerate(offs):
            decay = sense_weight(n, n_tagged, sense_counts.get(lemma))
            for anc, (f, via) in per_synset[off].items():
                if direct and via in WEAK_VIAS:
                    continue
                f = round(f * decay, 3)
                if f >= MIN_WEIGHT and f > best.get(anc, (0.0, ""))[0]:
                    best[anc] = (f, via)
        top = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_ITEMS]
        if top:
            lexicon[lemma] = [(anchor_id[a], f, via) for a, (f, via) in top]
    aliases = {plural: base for plural, base in exceptions.items() if base in lexicon and plural not in lexicon}
    table = [sorted((c, d) for c, d in down[a].items()) for a in anchors]
    return anchors, table, lexicon, aliases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-meaning", action="store_true", help="skip the sentence-model relation")
    ap.add_argument("--meaning-cache", type=Path, default=None, help="JSON file keeping the sentence model's answers")
    args = ap.parse_args(argv)
    if not (args.wordnet_dir / "data.noun").is_file():
        print(f"gen_wordnet: {args.wordnet_dir}/data.noun not found: apt-get install wordnet-base", file=sys.stderr)
        return 2
    t = time.perf_counter()
    anchors, table, lexicon, aliases = build(args.wordnet_dir, use_meaning=not args.no_meaning, cache=args.meaning_cache)
    meta = {"source": "WordNet 3.0 nouns (Debian wordnet-base); generated by scripts/gen_wordnet.py",
            "meaning": not args.no_meaning,
            "constants": {k: globals()[k] for k in ("HOLONYM", "MERONYM", "DOMAIN", "RELATED", "BROADER",
                                                      "BROADER_DECAY", "BROADER_SIZE", "GLOSS", "MEANING",
                                                      "SENSE_DECAY", "RARE_SENSE", "SENSE_POWER", "SENSE_FLOOR",
                                                      "MIN_WEIGHT", "MAX_ITEMS")}}
    size = wordnet.write(args.out, anchors, table, lexicon, aliases, meta)
    items = sum(len(v) for v in lexicon.values())
    print(f"wrote {len(lexicon)} lemmas (+{len(aliases)} plural forms), {items} items, {len(anchors)} anchors "
          f"to {args.out} ({size} bytes) in {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
