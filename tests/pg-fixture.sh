#!/usr/bin/env bash
# The PostgreSQL cluster shared by one ctest run (the pg/* tests, BADGE_TEST_STORE=postgres):
#   pg-fixture.sh start DIR   stop a stale cluster left in DIR, start a new one (scripts/pg-test.sh);
#                             without PostgreSQL, writes DIR/skip (the pg/* tests then skip),
#                             except in CI (CI=true), where it fails
#   pg-fixture.sh stop DIR    stop it
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${2:?usage: pg-fixture.sh start|stop DIR}
case "$1" in
start)
	mkdir -p "$dir"
	bash "$src/scripts/pg-test.sh" stop "$dir" || true
	rm -rf -- "$dir/skip" "$dir/dbs"
	if ! bash "$src/scripts/pg-test.sh" start "$dir" >/dev/null; then
		[[ "${CI:-}" != true ]] || { echo "FAIL: PostgreSQL could not be started (CI=true)" >&2; exit 1; }
		echo "PostgreSQL could not be started: the pg/* tests skip" | tee "$dir/skip"
	fi
	mkdir -p "$dir/dbs"
	;;
stop) bash "$src/scripts/pg-test.sh" stop "$dir" ;;
*) echo "usage: pg-fixture.sh start|stop DIR" >&2; exit 2 ;;
esac
