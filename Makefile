# cnnbook: `make book` builds the site, `make test` runs the tests. Both set everything up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?=
CHAPTERS ?= $(sort $(wildcard chapters/*.ipynb))

.PHONY: setup system book test execute check bench clean

setup: system $(STAMP) node_modules/.package-lock.json

# System packages (python3-venv if missing, the Fashion-MNIST files, Chromium for the site test), via apt-get.
system:
	@bash scripts/install-system.sh

# The virtual environment, rebuilt when the requirements change.
$(STAMP): requirements.txt pyproject.toml | system
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The site's JavaScript packages (MathJax; onnxruntime-web for "Try the networks"), as package-lock.json pins them.
node_modules/.package-lock.json: package.json package-lock.json | system
	npm ci --no-audit --no-fund

# Build the static site into _build/html from the committed (executed) notebooks.
book: setup
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# Run the test suite (data, trainer, notebooks in the smoke profile, the site build...).
test: setup
	$(PY) -m pytest

# Re-execute the chapters in place: make execute [PROFILE=cpu] [CHAPTERS=chapters/02_training_a_cnn.ipynb]
# In float32 by default (PRECISION=auto or bf16 to change it): the arithmetic of CPUs without native bfloat16,
# so the committed outputs and times hold on any CPU; make book-times measures bfloat16 beside it.
PRECISION ?= fp32
execute: setup
	CNNBOOK_PRECISION=$(PRECISION) $(PY) -m cnnbook.book execute $(if $(PROFILE),--profile $(PROFILE)) $(CHAPTERS)
	$(PY) -m cnnbook.editions  # the classroom editions follow the chapters

# List chapters whose committed outputs are stale (code changed) or failed.
check: setup
	$(PY) -m cnnbook.book check --profile cpu $(CHAPTERS)

# The speed benchmark against d2l (installed here only, never for the book): prints the table and
# writes benchmarks/results/<device>.json and .md; then float32 vs bfloat16 for every chapter's cpu form
# (benchmarks/results/precision-cpu.json and .md); then the speedrun (chapter 12, below: a new record beside
# the committed ones). make bench BENCH_ARGS=--quick checks that all three run (the speedrun's smoke run).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): benchmarks/requirements.txt $(STAMP)
	$(PY) -m pip install -q -r benchmarks/requirements.txt
	$(PY) -m pip install -q --no-deps d2l==1.0.3
	touch $@

bench: setup $(BENCH_STAMP)
	$(PY) benchmarks/speed.py $(BENCH_ARGS)
	$(PY) benchmarks/precision.py $(BENCH_ARGS)
	$(PY) benchmarks/speedrun.py $(if $(filter --quick,$(BENCH_ARGS)),--smoke) $(SPEEDRUN_ARGS)

# How long the whole book takes here in bfloat16 and in float32 (about 45 minutes on 2 cores; nothing
# committed is touched): prints the table, writes benchmarks/results/book-times-cpu.json and .md.
# make book-times BOOK_TIMES_ARGS="--precisions fp32 --chapters chapters/03_lenet.ipynb"
.PHONY: book-times
book-times: setup
	$(PY) benchmarks/book_times.py $(BOOK_TIMES_ARGS)

# The speedrun (chapter 12): 93 % on the test set after at most 60 s of training on a 2-core CPU, mean of 5 seeds
# (prints each seed, the mean and the fraction at 93 %; writes benchmarks/results/speedrun-cpu.json and .md).
# make speedrun SPEEDRUN_ARGS="--split val" (choosing settings), "--ablate no-tta" (one idea out), "--table"
# (the ablation table), "--smoke" (a tiny subset: checks that it runs, writes nothing in benchmarks/results/)
.PHONY: speedrun
speedrun: setup
	$(PY) benchmarks/speedrun.py $(SPEEDRUN_ARGS)

clean:
	rm -rf _build

# The gpu profile on the device present (for a CUDA machine; not in the tests): trains each chapter's network
# for 150 steps, checks that it learns and fits a T4's 15 GiB, predicts its full run on a Colab T4, prints the
# verdict and writes benchmarks/results/gpu-check-<device>.json and .md. No `setup` first: a GPU machine may
# be offline; any Python with torch and cnnbook's imports will do (make gpu-check PY=python3).
# make gpu-check GPU_CHECK_ARGS="--chapters lenet resnet --steps 100"  (--quick: checks that it runs)
.PHONY: gpu-check check-py313
gpu-check:
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

# Chapters as Colab runs them (not in the tests): a fresh Python 3.13 venv with Colab's torch 2.11.0, torchvision
# 0.26.0, numpy 2.1.3 and ipywidgets 7.7.1 first, cnnbook from the committed tree (not editable; it must change
# none of them), chapters 3 and 8 each alone in an empty folder, offline, smoke profile, progress bars on.
# Needs PyPI. make check-py313 PY313_NOTEBOOKS="chapters/09_resnet.ipynb"
check-py313:
	bash scripts/check-python313.sh $(PY313_NOTEBOOKS)

# The classroom editions, generated from the chapters (a test keeps them equal to what this makes):
# classroom/student/ (no solutions), classroom/instructor/ (solutions, times, what wrong answers mean) and
# the table of editions on book/classroom.md. `make editions` after changing a chapter.
.PHONY: editions grade
editions:
	$(PY) -m cnnbook.editions

# Grade a folder of submitted student editions: make grade SUBMISSIONS=path/to/folder [CHAPTER=09_resnet]
# writes grades.csv and grades.md into the folder (python -m cnnbook.grading --help for the limits).
grade:
	$(PY) -m cnnbook.grading $(SUBMISSIONS) $(if $(CHAPTER),--chapter $(CHAPTER))
