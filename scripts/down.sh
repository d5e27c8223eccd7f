#!/usr/bin/env bash
# make down: stops the badge that `make up` started (by the PID in .up/badge.pid): TERM, then
# KILL if it has not stopped within 15 s. The data (.up/) stays, so the next `make up` finds the
# same tenant, vault and instance; `rm -rf .up` forgets them. As root, the instances' network
# namespaces stay too (a restarted agent adopts them again); BADGE_DOWN_PURGE=1 removes them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${BADGE_UP_DIR:-$PWD/.up}
PIDFILE=$DATA/badge.pid

if [[ ! -f $PIDFILE ]]; then
	echo "badge is not running (no $PIDFILE)"
	exit 0
fi
pid=$(cat "$PIDFILE")
if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && grep -q badge "/proc/$pid/cmdline" 2>/dev/null; then
	kill -TERM "$pid"
	end=$((SECONDS + 15))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "badge (pid $pid) did not stop within 15s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	echo "badge (pid $pid) stopped"
else
	echo "badge (pid $pid) was not running"
fi
rm -f "$PIDFILE" "$DATA/env"
if [[ -n ${BADGE_DOWN_PURGE:-} && $(id -u) == 0 && -f $DATA/agent/sync.json ]]; then
	prefix=${BADGE_DOWN_NETNS_PREFIX:-badge-}
	for name in $(jq -r '.instances[].name' "$DATA/agent/sync.json"); do
		ip netns del "$prefix$name" 2>/dev/null && echo "removed namespace $prefix$name"
		rm -rf "/etc/netns/$prefix$name"
	done
fi
echo "data kept in $DATA ('rm -rf $DATA' forgets it)"
