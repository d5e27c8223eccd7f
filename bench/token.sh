#!/usr/bin/env bash
# Token issuance per second with client_assertion over HTTPS keep-alive, next to `openssl speed`
# RSA-2048 sign/verify on both cores, measured in the same run. Each token costs one RSA-2048
# signature, so the sign ceiling is what the figure is compared with. Medians of RUNS runs.
# usage: bench/token.sh [RUNS] [SECONDS]
set -euo pipefail
RUNS=${1:-3}
SECS=${2:-10}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BADGE_BUILD:-$SRC/build/dev}
BIN=$BUILD/badge
GEN=$BUILD/bench/bench_assertions
[[ -x $BIN && -x $GEN ]] || { echo "build first (make build)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing (scripts/install-deps.sh)"; exit 1; }

tmp=$(mktemp -d /tmp/badge-bench.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# the ceiling: openssl speed on both cores
speed=$(openssl speed -seconds 3 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6, $7}' | tail -1)
sign_ceiling=${speed% *}
verify_ceiling=${speed#* }

# one client asks as fast as it can: limits no run reaches (the buckets are still taken)
"$BIN" server --data-dir "$tmp/srv" --listen 127.0.0.1:0 --threads 2 --log-level warn \
	--token-limit-client 1000000000 --token-limit-tenant 1000000000 >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 300); do [[ -f $tmp/srv/env ]] && break; sleep 0.1; done
source "$tmp/srv/env"
export BADGE_DATA_DIR=$tmp/srv
app=$("$BIN" directory principal create --display-name bench)
client=$(jq -r .appId <<<"$app")
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/k.pem" -out "$tmp/c.pem" -days 1 -subj /CN=bench 2>/dev/null
"$BIN" directory credential add-cert --id "$client" --cert "$tmp/c.pem" >/dev/null
aud="https://127.0.0.1:$BADGE_PORT/$BADGE_TENANT_ID/oauth2/v2.0/token"

rates=()
for r in $(seq "$RUNS"); do
	# enough never-used assertions for the whole run, with room to spare
	n=$(awk -v c="$sign_ceiling" -v s="$SECS" 'BEGIN {c = c > 0 ? c : 5000; printf "%d", c * s * 1.5 + 1000}')
	"$GEN" "$tmp/k.pem" "$tmp/c.pem" "$client" "$aud" "$n" >"$tmp/assertions"
	out=$(ASSERTIONS=$tmp/assertions WRK_THREADS=2 TENANT=$BADGE_TENANT_ID CLIENT_ID=$client \
		SCOPE="https%3A%2F%2Fmanagement.${BADGE_DOMAIN}%2F%2F.default" \
		wrk -t2 -c16 -d"${SECS}s" -s "$SRC/bench/token.lua" "$BADGE_URL")
	rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	bad=$(awk '/non-200 responses/ {print $3}' <<<"$out")
	echo "run $r: $rate tokens/s (non-200: ${bad:-?})" >&2
	rates+=("$rate")
done
med=$(printf '%s\n' "${rates[@]}" | median)
ratio=$(awk -v a="$med" -v b="$sign_ceiling" 'BEGIN {printf "%.2f", a / b}')
printf 'openssl speed rsa2048 (2 cores): sign %s/s, verify %s/s\n' "$sign_ceiling" "$verify_ceiling"
printf 'token issuance (client_assertion, HTTPS keep-alive, median of %d): %s/s\n' "$RUNS" "$med"
printf 'ratio to the RSA-2048 sign ceiling: %s (target >= 0.8)\n' "$ratio"
