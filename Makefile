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

.PHONY: demo test deps build lint typecheck native-test bench clean

demo: build
	$(VENV)/bin/callpipe demo --out out/demo $(DEMO_ARGS)

test: build lint typecheck native-test
	$(PY) -m pytest -q $(PYTEST_ARGS)

deps: $(STAMP)/apt

build: $(STAMP)/install

lint: $(STAMP)/install
	$(VENV)/bin/ruff check src tests benchmarks native/cffi setup.py

typecheck: $(STAMP)/install
	$(VENV)/bin/mypy

# C unit and fuzz tests of native/src, built with AddressSanitizer, UBSan and LeakSanitizer.
# native/tests/test_cp_X.c tests native/src/cp_X.c; NATIVE_LIBS_X names its pkg-config packages.
NATIVE_TESTS := $(patsubst native/tests/%.c,build/native-tests/%,$(wildcard native/tests/test_cp_*.c))
NATIVE_LIBS_vpx := vpx
NATIVE_LIBS_opus := opus
NATIVE_LIBS_sframe := libcrypto
NATIVE_LIBS_jitter := opus
NATIVE_LIBS_jitter_replay := opus
# the replay decoder is linked with the buffer it plugs into
build/native-tests/test_cp_jitter_replay: native/src/cp_jitter.c native/include/callpipe/cp_jitter.h
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1
native-test: $(STAMP)/apt $(NATIVE_TESTS)
	@set -e; for t in $(NATIVE_TESTS); do \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

build/native-tests/test_cp_%: native/tests/test_cp_%.c native/src/cp_%.c native/tests/check.h native/include/callpipe/cp_%.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror $(SANITIZE) -Inative/include $(filter %.c,$^) \
	  $(if $(NATIVE_LIBS_$*),$$(pkg-config --cflags --libs $(NATIVE_LIBS_$*))) -lm -o $@

# every comparison suite, with the reference implementations installed; writes the reports
# that benchmarks/RESULTS.md is assembled from
BENCH_SUITES ?= codecs convert sframe rtp jitter sfu
BENCH_ARGS_sfu ?= --capacity
# every suite, then the VP8 work counted under valgrind against vpxenc/vpxdec (deterministic,
# unlike wall clock): reports in out/bench/
bench: build
	$(PY) -m pip install -q -e '.[dev,bench]'
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends valgrind; }
	@mkdir -p out/bench
	@set -e; $(foreach s,$(BENCH_SUITES),\
	  $(VENV)/bin/callpipe bench $(s) $(BENCH_ARGS_$(s)) --markdown out/bench/$(s).md \
	    --json out/bench/$(s).json;)
	$(PY) benchmarks/callgrind_codecs.py > out/bench/codecs-counted.md

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
