#!/usr/bin/env python3
"""Generate ``src/lookalike/models/data/imagenet_classes.json``.

The file is the keyword vocabulary for the 1000 ImageNet-1k classes (the
output classes of the EfficientNet-Lite0 classifier, standard class order).
For every class it records the WordNet lemmas of its synset, every lemma of
every ancestor synset (with the shortest hypernym distance), a short display
name and a short gloss.  ``lookalike.models.vocab`` reads it at runtime.

What it needs (all offline-capable, none of it at runtime):

* WordNet 3.0 database files, e.g. Debian's ``wordnet-base`` package::

      apt-get update && apt-get install -y wordnet-base   # -> /usr/share/wordnet

* the ``timm`` wheel, which carries ``timm/data/_info/imagenet_synsets.txt``
  (the 1000 WordNet ids in class order).  It is only read as a zip file, never
  installed.  Without ``--timm-wheel`` the script runs
  ``pip download --no-deps timm`` into a temporary directory.

Run it from the repository root::

    python scripts/gen_vocab.py [--wordnet-dir /usr/share/wordnet]
                                [--timm-wheel path/to/timm-*.whl]
                                [--out src/lookalike/models/data/imagenet_classes.json]

Generic ancestors dropped from the hypernym lists (they carry no useful search
meaning and would make words like "object" or "thing" match ~everything):
see ``DROPPED_ANCESTORS`` below.  The traversal still passes *through* them;
only their lemmas are left out.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter, deque
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "src" / "lookalike" / "models" / "data" / "imagenet_classes.json"
SYNSETS_MEMBER = "timm/data/_info/imagenet_synsets.txt"

# WordNet 3.0 noun offsets of top-level synsets whose lemmas are too generic to
# be useful search keywords.
DROPPED_ANCESTORS: dict[str, str] = {
    "00001740": "entity",
    "00001930": "physical entity",
    "00002137": "abstraction, abstract entity",
    "00002452": "thing (physical entity)",
    "04424418": "thing (artifact sense)",
    "00002684": "object, physical object",
    "00003553": "whole, unit",
    "00007347": "causal agent, cause, causal agency",
    "00020827": "matter",
    "00020090": "substance (matter)",
    "00019613": "substance (part)",
    "15046900": "solid",
    "03892891": "part, portion (artifact)",
    "13809207": "part, portion, component part, component, constituent",
    "00031921": "relation",
    "00033020": "communication",
    "00024264": "attribute",
    "00027807": "shape, form",
    "03932203": "piece",
    "14580897": "material, stuff",
    "14778436": "agent",
    "00027167": "location",
    "08620061": "point",
    "00019128": "natural object",
}
# Deliberately kept although broad: "artifact" (~half of ImageNet), "living
# thing", "organism", "animal", "instrumentality": they are plausible queries,
# and hypernym matches at that distance only get the floor weight anyway.

# Hand-picked display names where the first WordNet lemma is unclear/ambiguous.
NAME_OVERRIDES: dict[str, str] = {}

MARKER_RE = re.compile(r"\([a-z]+\)$")


def clean_word(word: str) -> str:
    """WordNet lemma -> display form: strip adjective markers, '_' -> ' '."""
    return MARKER_RE.sub("", word).replace("_", " ").strip()


def parse_data_noun(path: Path) -> dict[str, tuple[list[str], list[str], str]]:
    """offset -> (lemmas, hypernym offsets (@ and @i), gloss)."""
    synsets: dict[str, tuple[list[str], list[str], str]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith(" "):  # licence header
                continue
            data, _, gloss = line.partition(" | ")
            parts = data.split()
            offset = parts[0]
            w_cnt = int(parts[3], 16)
            words = [clean_word(parts[4 + 2 * i]) for i in range(w_cnt)]
            pos = 4 + 2 * w_cnt
            p_cnt = int(parts[pos])
            pos += 1
            hypers = []
            for _ in range(p_cnt):
                sym, target, tpos = parts[pos], parts[pos + 1], parts[pos + 2]
                pos += 4
                if sym in ("@", "@i") and tpos == "n":
                    hypers.append(target)
            synsets[offset] = (words, hypers, gloss.strip())
    return synsets


def short_gloss(gloss: str) -> str:
    """Definition part only (drop the quoted usage examples)."""
    gloss = re.split(r';\s*"', gloss, maxsplit=1)[0]
    return gloss.strip().rstrip(";").strip()


def ancestors(offset: str, synsets) -> dict[str, int]:
    """BFS over @/@i pointers: ancestor offset -> shortest distance."""
    dist: dict[str, int] = {}
    queue = deque([(offset, 0)])
    seen = {offset}
    while queue:
        cur, d = queue.popleft()
        for h in synsets[cur][1]:
            if h not in seen:
                seen.add(h)
                dist[h] = d + 1
                queue.append((h, d + 1))
    return dist


def read_wnids(wheel: Path | None) -> list[str]:
    if wheel is None:
        tmp = tempfile.mkdtemp(prefix="timm-wheel-")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "timm", "-d", tmp],
            check=True,
        )
        wheel = Path(sorted(glob.glob(f"{tmp}/timm-*.whl"))[-1])
    with zipfile.ZipFile(wheel) as zf:
        wnids = zf.read(SYNSETS_MEMBER).decode().split()
    if len(wnids) != 1000 or len(set(wnids)) != 1000:
        raise SystemExit(f"expected 1000 distinct wnids, got {len(wnids)}")
    return wnids


def build(wordnet_dir: Path, wheel: Path | None) -> list[dict]:
    synsets = parse_data_noun(wordnet_dir / "data.noun")
    wnids = read_wnids(wheel)
    classes = []
    for index, wnid in enumerate(wnids):
        offset = wnid[1:]
        lemmas, _, gloss = synsets[offset]
        words = list(dict.fromkeys(w.lower() for w in lemmas))
        hyp: dict[str, int] = {}
        for anc, d in sorted(ancestors(offset, synsets).items(), key=lambda kv: kv[1]):
            if anc in DROPPED_ANCESTORS:
                continue
            for w in synsets[anc][0]:
                w = w.lower()
                if w not in hyp and w not in words:
                    hyp[w] = d
        classes.append(
            {
                "index": index,
                "wnid": wnid,
                "name": NAME_OVERRIDES.get(wnid, lemmas[0]),
                "words": words,
                "hypernyms": [[w, d] for w, d in hyp.items()],
                "gloss": short_gloss(gloss),
                "_parent": synsets[synsets[offset][1][0]][0][0] if synsets[offset][1] else "",
            }
        )
    # Disambiguate display names shared by several classes (e.g. "crane" the
    # bird vs. the machine) with the first lemma of the direct hypernym.
    counts = Counter(c["name"].lower() for c in classes)
    for c in classes:
        parent = c.pop("_parent")
        if counts[c["name"].lower()] > 1:
            c["name"] = f"{c['name']} ({parent})"
    return classes


def write(classes: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in classes]
    header = {
        "source": "WordNet 3.0 (data.noun) + timm imagenet_synsets.txt; generated by scripts/gen_vocab.py",
        "dropped_ancestors": sorted(DROPPED_ANCESTORS.values()),
    }
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":"))[:-1]
    out.write_text(head + ',"classes":[\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")
    write_names(classes, out.with_name(NAMES_FILE))


NAMES_FILE = "imagenet_names.tsv"


def write_names(classes: list[dict], out: Path) -> None:
    """The names alone, one class a line (index, wnid, name, words joined by "|"), for what needs no more
    (captions while indexing: lookalike.models.vocab.ClassNames reads this instead of parsing the whole JSON,
    ~0.06 s of CPU per process)."""
    rows = []
    for c in classes:
        fields = [str(c["index"]), c["wnid"], c["name"], "|".join(c["words"])]
        if any(ch in f for f in fields for ch in "\t\n") or any("|" in w for w in c["words"]):
            raise SystemExit(f"class {c['index']}: a tab, newline or '|' in its names")
        rows.append("\t".join(fields))
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--timm-wheel", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    classes = build(args.wordnet_dir, args.timm_wheel)
    write(classes, args.out)
    json.loads(args.out.read_text(encoding="utf-8"))  # sanity: valid JSON
    print(f"wrote {len(classes)} classes to {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
