# PostgreSQL helpers for integration tests, sourced by tests/lib.sh (do not source it directly).
#
# With BADGE_TEST_STORE=postgres (the pg/* copies of every integration and compat test),
# BADGE_BIN becomes a wrapper over tests/pg-badge.sh, which runs the real binary (BADGE_REAL_BIN) and gives
# every `badge server` without --store a PostgreSQL database of its own, one per data dir (a
# restart on the same data dir finds the same database), in the cluster that the ctest fixture
# started (BADGE_TEST_PG_DIR, tests/pg-fixture.sh). Databases are reached over the cluster's
# Unix socket, so that servers inside a network namespace reach them too.
#
#   bt_pg_cluster          make sure a cluster is there: the fixture's, or one started here for
#                          this test (stopped at exit); exits 77 (skip) without PostgreSQL
#                          unless CI=true; sets BT_PG_DIR
#   bt_pg_newdb [NAME]     create a fresh database, print its URL
#   bt_pg_require          bt_pg_cluster, but only in the pg/* run: elsewhere exit 77 (skip)
#                          (for tests that exist only on PostgreSQL: replicas, migrate)

bt_pg_cluster() {
	[[ -z "${BT_PG_DIR:-}" ]] || return 0
	if [[ -n "${BADGE_TEST_PG_DIR:-}" && -f "$BADGE_TEST_PG_DIR/url" ]]; then
		BT_PG_DIR=$BADGE_TEST_PG_DIR
		return 0
	fi
	if [[ -n "${BADGE_TEST_PG_DIR:-}" && -f "$BADGE_TEST_PG_DIR/skip" ]]; then
		echo "SKIP: $(cat "$BADGE_TEST_PG_DIR/skip")"
		exit 77
	fi
	local d
	d=$(mktemp -d /tmp/badge-pgt.XXXXXX)
	bt_cleanup rm -rf -- "$d"
	bt_cleanup bash "$BADGE_SRC/scripts/pg-test.sh" stop "$d"
	if ! bash "$BADGE_SRC/scripts/pg-test.sh" start "$d" >/dev/null; then
		[[ "${CI:-}" != true ]] || bt_fail "PostgreSQL could not be started (CI=true)"
		echo "SKIP: PostgreSQL could not be started"
		exit 77
	fi
	mkdir -p "$d/dbs"
	BT_PG_DIR=$d
}

bt_pg_require() {
	if [[ "${BADGE_TEST_STORE:-}" != postgres ]]; then
		echo "SKIP: this test runs on PostgreSQL only (as pg/...)"
		exit 77
	fi
	bt_pg_cluster
}

bt_pg_newdb() {
	bt_pg_cluster
	BT_PG_DIR=$BT_PG_DIR "$BADGE_SRC/tests/pg-badge.sh" --newdb "${1:-}"
}

if [[ "${BADGE_TEST_STORE:-}" == postgres ]]; then
	bt_pg_cluster
	if [[ -z "${BADGE_REAL_BIN:-}" ]]; then
		BADGE_REAL_BIN=$BADGE_BIN
		# A wrapper with its settings baked in: tests run `badge` under `env -i` too.
		BADGE_BIN=$_BT_ROOT/badge
		printf '#!/bin/sh\nBADGE_REAL_BIN=%q BT_PG_DIR=%q exec bash %q "$@"\n' "$BADGE_REAL_BIN" "$BT_PG_DIR" \
			"$BADGE_SRC/tests/pg-badge.sh" >"$BADGE_BIN"
		chmod 0755 "$BADGE_BIN"
		chmod 0755 "$_BT_ROOT"
	fi
	export BADGE_REAL_BIN BADGE_BIN BT_PG_DIR
fi
