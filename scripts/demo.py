"""`make demo`: index real sample photos from installed packages and run searches, printing each command.

Writes the library to .lookalike-demo/library and contact sheets to demo-out/.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".lookalike-demo"
OUT = ROOT / "demo-out"
BIN = Path(sys.executable).parent / "lookalike"


def sh(*args: str) -> None:
    printable = " ".join(shlex.quote(a) for a in ["lookalike", *args])
    print(f"\n$ {printable}", flush=True)
    env = {**os.environ, "LOOKALIKE_LIBRARY": str(WORK / "library")}
    subprocess.run([str(BIN), *args], check=True, env=env)


def main() -> None:
    from lookalike.samples import copy_samples, sample_photos

    photos = WORK / "photos"
    if not photos.exists():
        names = sorted(sample_photos())
        print(f"copying {len(names)} sample photos from installed packages into {photos}")
        copy_samples(photos, names, as_jpeg=False)
    # an edited copy to search with: mirrored, cropped and recompressed
    queries = WORK / "queries"
    queries.mkdir(parents=True, exist_ok=True)
    with Image.open(sample_photos()["chelsea"]) as im:
        im = ImageOps.mirror(im.convert("RGB"))
        w, h = im.size
        im = im.crop((w // 8, h // 8, w - w // 8, h - h // 8))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=35)
        (queries / "edited-cat.jpg").write_bytes(buf.getvalue())
    # edited copies among the photos, for `lookalike dupes`: a byte-for-byte copy, a 40% crop, a rotation
    copies = photos / "copies"
    if not copies.exists():
        from lookalike.evaluation.edits import apply

        copies.mkdir()
        (copies / "coffee-copy.png").write_bytes(sample_photos()["coffee"].read_bytes())
        with Image.open(sample_photos()["coffee"]) as im:
            apply("crop40", im, "demo").save(copies / "coffee-cropped.jpg", quality=85)
            apply("rotate10", im, "demo").save(copies / "coffee-rotated.jpg", quality=85)
    OUT.mkdir(exist_ok=True)

    sh("index", str(photos), "--progress")
    sh("info")
    sh("search", str(queries / "edited-cat.jpg"), "--limit", "5", "--grid", str(OUT / "by-image.png"))
    sh("search", "cat", "--limit", "5", "--explain")
    sh("search", "espresso", "--limit", "3")
    sh("search", "dog", "--limit", "3")
    sh("search", "fish", "--limit", "3", "--grid", str(OUT / "fish.png"))
    sh("search", "sofa", "--limit", "5", "--grid", str(OUT / "sofa.png"))
    sh("search", str(photos / "chelsea.png"), "--by", "tags", "--limit", "3")
    sh("search", "cat", "--limit", "2", "--json")
    sh("dupes")
    print(f"\ncontact sheets written to {OUT}/ (by-image.png, fish.png, sofa.png)")


if __name__ == "__main__":
    main()
