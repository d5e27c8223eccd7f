#!/usr/bin/env bash
# The storage conformance suite (tests/unit/test_core_store.c) against a throwaway PostgreSQL
# cluster started here. Without PostgreSQL the test is skipped, except in CI (CI=true), where
# it fails: there the database must be there.
set -euo pipefail

build=${BADGE_BUILD:?BADGE_BUILD not set}
src=${BADGE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
bin="$build/tests/test_core_store"
[[ -x "$bin" ]] || { echo "missing $bin" >&2; exit 1; }

work=$(mktemp -d /tmp/badge-store-pg.XXXXXX)
cleanup() {
	bash "$src/scripts/pg-test.sh" stop "$work" || true
	rm -rf -- "$work"
}
trap cleanup EXIT

if ! url=$(bash "$src/scripts/pg-test.sh" start "$work"); then
	if [[ "${CI:-}" == true ]]; then
		echo "FAIL: PostgreSQL could not be started (CI=true)" >&2
		exit 1
	fi
	echo "SKIP: PostgreSQL could not be started"
	exit 0
fi
BADGE_TEST_PG_URL="$url" BADGE_TEST_PG_REQUIRED=1 "$bin"
# the audit writer's multi-row statements on PostgreSQL too
BADGE_TEST_PG_URL="$url" "$build/tests/test_core_audit"
