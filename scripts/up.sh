#!/usr/bin/env bash
# make up: builds badge and runs `badge up --data-dir .up` in the background; waits (with a
# deadline) until it has written .up/env, then says how to use it. `make down` stops it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=.up
BIN=build/dev/badge
DEADLINE=${BADGE_UP_TIMEOUT:-60}

if [[ -f "$DATA/badge.pid" ]] && kill -0 "$(cat "$DATA/badge.pid")" 2>/dev/null; then
	echo "badge is already running (pid $(cat "$DATA/badge.pid")); 'make down' stops it"
	exit 0
fi

cmake --preset dev >/dev/null
cmake --build --preset dev --target badge

mkdir -p "$DATA"
rm -f "$DATA/env" "$DATA/badge.pid"
nohup "$BIN" up --data-dir "$DATA" >>"$DATA/badge.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$DATA/badge.pid"

end=$((SECONDS + DEADLINE))
until [[ -f "$DATA/env" ]]; do
	if ! kill -0 "$pid" 2>/dev/null; then
		rm -f "$DATA/badge.pid"
		echo "badge up: the server exited; last lines of $DATA/badge.log:" >&2
		tail -n 20 "$DATA/badge.log" >&2
		exit 1
	fi
	if ((SECONDS >= end)); then
		echo "badge up: $DATA/env did not appear within ${DEADLINE}s; see $DATA/badge.log" >&2
		kill "$pid" 2>/dev/null || true
		rm -f "$DATA/badge.pid"
		exit 1
	fi
	sleep 0.2
done

echo "badge is running (pid $pid, log $DATA/badge.log)."
echo "Use it from this shell with:  source $DATA/env"
echo "Stop it with:                 make down"
