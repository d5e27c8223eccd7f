#!/usr/bin/env bash
# make down: stops the badge started by `make up` (by its PID in .up/badge.pid).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PIDFILE=.up/badge.pid

if [[ ! -f "$PIDFILE" ]]; then
	echo "badge is not running (no $PIDFILE)"
	exit 0
fi
pid=$(cat "$PIDFILE")
if kill -0 "$pid" 2>/dev/null; then
	kill -TERM "$pid"
	end=$((SECONDS + 15))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "badge (pid $pid) did not stop within 15s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
fi
rm -f "$PIDFILE"
echo "badge stopped"
