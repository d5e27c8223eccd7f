#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests.
#   pg-test.sh start DIR   initdb in DIR/data, listen on a Unix socket and on 127.0.0.1 with a
#                          free port, print the URL (postgresql://...) and write it to DIR/url
#   pg-test.sh stop DIR    stop it (pg_ctl stop -m fast)
# As root, the cluster runs as the `postgres` system user (created as `badge-pg` when Debian's
# postgresql is not installed). PG_BIN overrides the server binaries' directory.
set -euo pipefail

die() { echo "pg-test: $*" >&2; exit 1; }

find_bin() {
	if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
	if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then echo /usr/lib/postgresql/15/bin; return; fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	[[ -n "$d" && -x "$d/initdb" ]] || die "no PostgreSQL server binaries (apt-get install postgresql)"
	echo "$d"
}

# Runs a command as the cluster's owner.
as_owner() {
	if [[ -n "$OWNER" ]]; then runuser -u "$OWNER" -- "$@"; else "$@"; fi
}

pick_owner() {
	OWNER=""
	[[ $(id -u) -eq 0 ]] || return 0
	if id -u postgres >/dev/null 2>&1; then
		OWNER=postgres
	else
		id -u badge-pg >/dev/null 2>&1 ||
			useradd --system --no-create-home --shell /usr/sbin/nologin badge-pg ||
			die "cannot create the badge-pg user"
		OWNER=badge-pg
	fi
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
	local dir=$1 bin root
	bin=$(find_bin)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	pick_owner
	# The cluster lives in DIR when its owner can reach it and the socket path fits the
	# 107-byte limit of sockaddr_un; otherwise in a short directory of its own under /tmp.
	root="$dir"
	if [[ -n "$OWNER" ]]; then
		chown "$OWNER" "$dir"
		if ! runuser -u "$OWNER" -- test -w "$dir" -a -x "$dir"; then root=""; fi
	fi
	if [[ -z "$root" || ${#root} -gt 80 ]]; then
		root=$(mktemp -d /tmp/badge-pg.XXXXXX)
		[[ -z "$OWNER" ]] || chown "$OWNER" "$root"
	fi
	echo "$root" >"$dir/root"
	[[ ! -e "$root/data/PG_VERSION" ]] || die "a cluster already exists in $root/data"

	local pass
	pass=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
	(umask 077 && printf '%s\n' "$pass" >"$root/pwfile")
	[[ -z "$OWNER" ]] || chown "$OWNER" "$root/pwfile"
	as_owner "$bin/initdb" -D "$root/data" -U badge --pwfile="$root/pwfile" -E UTF8 --no-locale \
		--auth-local=trust --auth-host=scram-sha-256 >"$root/initdb.log" 2>&1 ||
		{ cat "$root/initdb.log" >&2; die "initdb failed"; }
	rm -f "$root/pwfile"

	local port tries
	for tries in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 40000))
		port_in_use "$port" && continue
		if as_owner "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 start -o \
			"-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$root -c max_connections=200 -c unix_socket_permissions=0700 -c fsync=on" \
			>/dev/null 2>&1; then
			break
		fi
		port=""
	done
	[[ -n "$port" ]] || { tail -n 20 "$root/server.log" >&2 || true; die "server did not start"; }

	as_owner "$bin/psql" -X -q -h "$root" -p "$port" -U badge -d postgres -c "CREATE DATABASE badge" \
		>/dev/null || die "cannot create database"
	local url="postgresql://badge:$pass@127.0.0.1:$port/badge"
	(umask 077 && echo "$url" >"$dir/url")
	echo "$url"
}

stop() {
	local dir=$1 bin root
	bin=$(find_bin)
	[[ -f "$dir/root" ]] || return 0
	root=$(cat "$dir/root")
	pick_owner
	if [[ -f "$root/data/postmaster.pid" ]]; then
		as_owner "$bin/pg_ctl" -D "$root/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			echo "pg-test: pg_ctl stop failed" >&2
	fi
	# Remove only what start made.
	if [[ "$root" == /tmp/badge-pg.* ]]; then
		rm -rf -- "$root"
	else
		rm -rf -- "$root/data" "$root/server.log" "$root/initdb.log"
	fi
	rm -f -- "$dir/root" "$dir/url"
}

case "${1:-}" in
start) [[ $# -eq 2 ]] || die "usage: pg-test.sh start DIR"; start "$2" ;;
stop) [[ $# -eq 2 ]] || die "usage: pg-test.sh stop DIR"; stop "$2" ;;
*) die "usage: pg-test.sh start|stop DIR" ;;
esac
