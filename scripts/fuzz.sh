#!/usr/bin/env bash
# Builds the fuzz preset (clang + libFuzzer) and runs every fuzz target for SECONDS (default 60)
# each. New inputs go to build/fuzz/corpus/<name> (the committed corpus is read as seeds, never
# written); crashes to build/fuzz/artifacts/. Exits non-zero if any target found a crash.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-60}

cmake --preset fuzz >/dev/null

failed=()
shopt -s nullglob
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	corpus=${name#fuzz_}
	bin=build/fuzz/tests/$name
	# Built one by one: a target that does not build is reported, the others still run.
	if ! cmake --build --preset fuzz --target "$name" >"build/fuzz/$name.build.log" 2>&1; then
		echo "fuzz: $name does not build (see build/fuzz/$name.build.log)" >&2
		failed+=("$name")
		continue
	fi
	work=build/fuzz/corpus/$corpus
	art=build/fuzz/artifacts/$corpus/
	mkdir -p "$work" "$art"
	echo "=== $name for ${seconds}s"
	if ! "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$art" -print_final_stats=1 "$work" "tests/fuzz/corpus/$corpus"; then
		failed+=("$name")
	fi
done

if ((${#failed[@]})); then
	echo "fuzz: FAILED: ${failed[*]} (artifacts in build/fuzz/artifacts/)" >&2
	exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a crash"
