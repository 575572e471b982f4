"""Generate ``src/lookalike/models/data/class_text_minilm.npy``: sentence embeddings of the 1000 ImageNet
class descriptions (see lookalike.search.keywords.class_texts), so that free-text search needs no
minute-long warm-up on a 2-core machine. Run again whenever the vocabulary or the class texts change:

    PYTHONPATH=src python scripts/gen_class_text.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lookalike.models.text import TextModel  # noqa: E402
from lookalike.search.keywords import CLASS_TEXT_FILE, class_texts, texts_key  # noqa: E402


def main() -> None:
    texts = class_texts()
    t = time.perf_counter()
    emb = TextModel().encode(texts)
    out = ROOT / "src" / "lookalike" / "models" / "data" / CLASS_TEXT_FILE
    np.savez_compressed(out, key=np.array(texts_key(texts)), emb=emb.astype(np.float16))
    print(f"{len(texts)} class texts embedded in {time.perf_counter() - t:.1f} s -> {out} "
          f"({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
