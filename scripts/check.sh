#!/usr/bin/env bash
# Configures, builds and tests each preset given (dev, asan, ...), every one even when an earlier
# one failed, then prints each preset's summary. Exits non-zero if any step of any preset failed.
#   scripts/check.sh dev asan
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
(($#)) || set -- dev asan

declare -A result
failed=0
for preset in "$@"; do
	log="build/$preset-check.log"
	mkdir -p build
	: >"$log"
	echo "=== $preset: configure and build" | tee -a "$log"
	if ! cmake --preset "$preset" >>"$log" 2>&1 || ! cmake --build --preset "$preset" 2>&1 | tee -a "$log"; then
		result[$preset]="BUILD FAILED (see $log)"
		failed=1
		continue
	fi
	echo "=== $preset: test" | tee -a "$log"
	if ctest --preset "$preset" 2>&1 | tee -a "$log"; then
		result[$preset]="passed"
	else
		result[$preset]="TESTS FAILED (see $log)"
		failed=1
	fi
done

echo
echo "=== summary"
for preset in "$@"; do
	log="build/$preset-check.log"
	echo "--- $preset: ${result[$preset]}"
	if [[ "${result[$preset]}" == BUILD* ]]; then
		grep -E 'error:|undefined reference|CMake Error' "$log" | sort -u | head -n 10 || true
	fi
	grep -E '^[0-9]+% tests passed|^Total Test time' "$log" || true
	# ctest lists failures after "The following tests FAILED:"
	sed -n '/The following tests FAILED:/,$p' "$log" | grep -E '^\s+[0-9]+ - ' || true
done
exit "$failed"
