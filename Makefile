# callpipe: `make demo` and `make test` do all their own set-up on a fresh Debian 12 machine:
# system packages through apt-get (when missing), a local .venv, an editable install that builds
# the native modules.  Other targets: build, lint, typecheck, bench, clean.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := .stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# libraries we link (pkg-config: vpx, opus, libcrypto), reference tools for interop tests and
# benchmarks, Xvfb for the screen-capture test.
APT_PKGS := build-essential pkg-config libvpx-dev libopus-dev libssl-dev \
            ffmpeg vpx-tools opus-tools xvfb
NATIVE_SRC := $(shell find native src/callpipe -name '*.c' -o -name '*.h' -o -name '*.pyx' -o -name '*.pxd' 2>/dev/null | grep -v '^src/callpipe/.*\.c$$') native/cffi/*.py
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test deps build lint typecheck bench clean

demo: build
	$(VENV)/bin/callpipe demo --out out/demo $(DEMO_ARGS)

test: build lint typecheck
	$(PY) -m pytest -q $(PYTEST_ARGS)

deps: $(STAMP)/apt

build: $(STAMP)/install

lint: $(STAMP)/install
	$(VENV)/bin/ruff check src tests benchmarks native/cffi setup.py

typecheck: $(STAMP)/install
	$(VENV)/bin/mypy

bench: build
	$(VENV)/bin/callpipe bench codecs

$(STAMP)/apt: Makefile
	@mkdir -p $(STAMP)
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then missing="$$missing python3-venv python3-dev"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "== installing system packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else echo "== system packages present"; fi
	@touch $@

$(STAMP)/venv: $(STAMP)/apt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@touch $@

$(STAMP)/install: $(STAMP)/venv pyproject.toml setup.py $(NATIVE_SRC)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

clean:
	rm -rf build $(STAMP) src/*.egg-info
	find src -name '*.so' -delete
	find src/callpipe -name '*.c' -delete
