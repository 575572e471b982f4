#!/usr/bin/env bash
# GPU indexing figures in one prepared run (under 8 minutes on a lent GPU machine; see issue 14, target 7).
#
# For 1, 3 and 12 MP phone JPEGs (bench/index_throughput.py builds them from the packages' real photos) it
# measures, side by side in one run on the same files:
#   model-only        the fp16 forward pass alone on preprocessed batches (torch engine on CUDA)
#   decode ceiling    the CPU decoding threads alone (read + hash + DCT-scaled decode + preprocess, all cores);
#                     a GPU JPEG decoder too when one is importable (nvidia.nvimgcodec), else it says so
#   end-to-end        `lookalike index --device cuda` in a fresh process on a fresh library
# and prints per size: images/s of each, end-to-end / model-only and end-to-end / decode ceiling (the ratios
# are the figures: the CPU decode is the ceiling on a GPU machine).
#
#   bash bench/gpu.sh            # needs the project's venv (PY=.venv/bin/python by default) and a CUDA GPU
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-$(mktemp -d)}
deadline=$(( $(date +%s) + 470 ))   # 7 min 50 s for everything

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" - <<'PY' || { echo "no CUDA device: nothing to measure"; exit 1; }
import torch
assert torch.cuda.is_available()
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
PY
"$PY" - <<'PY'
try:
    from nvidia import nvimgcodec  # noqa: F401
    print("GPU JPEG decoder: nvidia.nvimgcodec available")
except ImportError:
    print("GPU JPEG decoder: none installed (nvidia.nvimgcodec); the decode ceiling below is the CPU threads'")
PY

for mp in 1 3 12; do
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt 40 ]; then echo "${mp} MP: skipped (time budget spent)"; continue; fi
  timeout $(( left < 200 ? left : 200 )) "$PY" bench/index_throughput.py --device cuda --sizes "$mp" --count 256 \
      --repeat 1 --batch-size 64 --json > "$OUT/gpu-$mp.json" 2> "$OUT/gpu-$mp.err" \
    || { echo "${mp} MP: failed or timed out: $(tail -c 300 "$OUT/gpu-$mp.err")"; continue; }
done

"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
rows = []
for mp in (1, 3, 12):
    p = Path(sys.argv[1]) / f"gpu-{mp}.json"
    if p.is_file() and p.stat().st_size:
        r = json.loads(p.read_text())
        rows.append((mp, r["model_only_ips"], r["decode_only_ips"], r["end_to_end_ips"], r["ratio"],
                     r["of_decode_ceiling"], r["peak_rss_mb"]))
print(f"{'MP':>3} {'model-only/s':>13} {'decode ceiling/s':>17} {'end-to-end/s':>13} {'e2e/model':>10} "
      f"{'e2e/decode':>11} {'peak MB':>8}")
for mp, m, d, e, rm, rd, rss in rows:
    print(f"{mp:>3} {m:13.1f} {d:17.1f} {e:13.1f} {rm:10.2f} {rd:11.2f} {rss:8.0f}")
json.dump([dict(zip(("mp", "model_only_ips", "decode_ceiling_ips", "end_to_end_ips", "of_model", "of_decode_ceiling",
                     "peak_rss_mb"), r)) for r in rows], sys.stdout)
print()
PY
