#!/usr/bin/env bash
# BADGE_BIN for the pg/* tests (see tests/pg-lib.sh): runs BADGE_REAL_BIN; `server` without
# --store gets --store with the database of its data dir in the cluster BT_PG_DIR (created on
# first use); so does `keyvault audit --data-dir DIR` (it reads the server's store). `pg-badge.sh --newdb [NAME]` creates a database and prints its URL.
set -euo pipefail
pg=${BT_PG_DIR:?BT_PG_DIR not set}

newdb() {
	local root port name=$1
	root=$(cat "$pg/root")
	port=$(sed -E 's|.*:([0-9]+)/[^/]*$|\1|' "$pg/url")
	[[ -n "$name" ]] || name="t_$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	psql -X -q -v ON_ERROR_STOP=1 -h "$root" -p "$port" -U badge -d postgres \
		-c "CREATE DATABASE \"$name\"" >/dev/null || { echo "pg-badge: cannot create database $name" >&2; exit 1; }
	echo "postgresql:///$name?host=$root&port=$port&user=badge"
}

if [[ "${1:-}" == --newdb ]]; then
	newdb "${2:-}"
	exit 0
fi
real=${BADGE_REAL_BIN:?BADGE_REAL_BIN not set}
if [[ "${1:-}" == server || "${1:-} ${2:-}" == "keyvault audit" ]]; then
	data="" store=no
	args=("$@")
	for ((i = 1; i < ${#args[@]}; i++)); do
		case "${args[i]}" in
		--data-dir) data=${args[i + 1]:-} ;;
		--data-dir=*) data=${args[i]#--data-dir=} ;;
		--store | --store=* | --check-config) store=yes ;;
		esac
	done
	if [[ -n "$data" && $store == no ]]; then
		mkdir -p "$data"
		key=$(cd "$data" && pwd -P | md5sum | cut -c1-16)
		mkdir -p "$pg/dbs"
		if [[ ! -s "$pg/dbs/$key" ]]; then
			newdb "d_$key" >"$pg/dbs/$key.tmp"
			mv "$pg/dbs/$key.tmp" "$pg/dbs/$key"
		fi
		exec "$real" "$@" --store "$(cat "$pg/dbs/$key")"
	fi
fi
exec "$real" "$@"
