# Everything a fresh machine needs: `make serve` runs the service, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup sysdeps serve test lint typecheck unit bench soak mutation index clean cluster cluster-test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on this disk; an unpinned torch would pull a CUDA build of several GB
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

# Servers the tests talk to, from Debian's packages (redis-server; chromium for the widget tests, with the
# DejaVu fonts its approved screenshots were taken with; haproxy for the cluster; Tesseract with its
# Vietnamese data for scanned PDFs).
sysdeps:
	@need=""; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || need="$$need haproxy"; \
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || need="$$need fonts-dejavu-core"; \
	tesseract --list-langs 2>/dev/null | grep -qx vie || need="$$need tesseract-ocr tesseract-ocr-vie"; \
	if [ -n "$$need" ]; then \
	  echo "installing:$$need"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; fi; \
	fi

serve: setup
	$(BIN)/ketluan serve

index: setup
	$(BIN)/ketluan index

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup sysdeps
	$(BIN)/pytest -q

test: setup sysdeps lint typecheck unit

# Slow: build, embedder, scale curve (10k, 100k, 1M synthetic passages; ~30 min on 2 cores) and HTTP benchmarks
# → bench-results/*.json and bench-results/bench.png; summarised in docs/benchmarks.md.
bench: setup sysdeps
	nice -n 10 $(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

# Long reliability runs (10,000 chats at 32 clients, workers + Redis, re-index under load, the mixed load with
# hostile input at 2,000 requests a run: benchmarks/mixed_load.py); prints the numbers.
soak: setup sysdeps
	$(BIN)/pytest -q -s -m slow --timeout 3600

# Mutation testing of the answer-safety code (bot/citations.py with the citation gate, the eval scorers, the
# date parser): every mutant must be killed by a unit test or be listed as equivalent in docs/testing.md.
# Slow (tens of minutes on 2 cores), so not part of `make test`. MUTANTS="bot.citations*" runs one module.
# tests/gate_mutants.py then mutates the gate where ChatService applies it (bot/service.py, outside mutmut's scope).
MUTANTS ?=
mutation: setup
	nice -n 10 $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results
	nice -n 10 $(BIN)/python -m tests.gate_mutants

clean:
	rm -rf $(VENV) data/index data/state mutants

# Several hosts simulated with network namespaces (root): replicas of `ketluan serve`, Redis, HAProxy in front
# (deploy/haproxy/haproxy.cfg). `cluster` stays up until Ctrl-C; `cluster-test` runs the failover scenarios
# (1,000 chats each from 32 clients) and prints one JSON object last. Both remove what they created.
CLUSTER_ARGS ?=
cluster: setup sysdeps
	$(BIN)/python -m benchmarks.cluster up $(CLUSTER_ARGS)

cluster-test: setup sysdeps
	nice -n 10 $(BIN)/python -m benchmarks.cluster test $(CLUSTER_ARGS)
