# A thin wrapper over CMake presets and the project's scripts. The README's two commands are
# `make up` and `make check`; everything else is a convenience.
SHELL := /bin/bash
FUZZ_SECONDS ?= 60

.PHONY: all deps build check asan fuzz up down bench clean format

all: build

deps:
	scripts/install-deps.sh

build:
	cmake --preset dev
	cmake --build --preset dev

# deps, then the dev and the asan builds, each running the whole suite; non-zero on any failure.
check: deps
	scripts/check.sh dev asan

asan:
	scripts/check.sh asan

# Real libFuzzer runs (clang): every fuzz target for FUZZ_SECONDS seconds each.
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

up:
	scripts/up.sh

down:
	scripts/down.sh

bench:
	@if [ -x bench/run.sh ]; then bench/run.sh; else echo "make bench: bench/run.sh not present"; exit 1; fi

clean:
	rm -rf build

# Formats C sources under src and tests with .clang-format (review the diff before committing).
format:
	find src tests -name '*.[ch]' -not -path '*/node_modules/*' -print0 | xargs -0 clang-format -i
