#!/usr/bin/env bash
# Secret GETs and token issuances per second on SQLite (one server), on PostgreSQL with one
# replica, and on PostgreSQL with two replicas (the second joined with --join-from; the load is
# split evenly, one wrk per replica, and the rates are summed). Everything (PostgreSQL, the
# replicas, wrk) shares this machine's cores, so two replicas measure the cost of sharing state
# through the database, not added capacity. Medians of RUNS runs.
#   secret GET: wrk -c CONNS, HTTPS keep-alive, a bearer token, GET /vaults/kv1/secrets/s1
#   token: client_credentials with never-used client assertions (bench/token.sh's method)
# usage: bench/replicas.sh [RUNS] [SECONDS]
#   env: BADGE_BUILD (default build/perf), THREADS (server pool per replica, 2), CONNS (64),
#        POOL (PostgreSQL connections per replica, 8), ONLY ("get" or "token": one workload),
#        KEEP=1 (leave the servers of the last configuration running: inspect /metrics)
set -euo pipefail
RUNS=${1:-3}
SECS=${2:-10}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BADGE_BUILD:-$SRC/build/perf}
BIN=$BUILD/badge
GEN=$BUILD/bench/bench_assertions
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
POOL=${POOL:-8}
[[ -x $BIN && -x $GEN ]] || { echo "build first: cmake --build $BUILD --target badge bench_assertions"; exit 1; }
for t in wrk jq curl openssl psql; do command -v $t >/dev/null || { echo "$t missing"; exit 1; }; done

tmp=$(mktemp -d /tmp/badge-bench-rep.XXXXXX)
pids=()
stop_all() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	pids=()
}
cleanup() {
	stop_all
	bash "$SRC/scripts/pg-test.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

pg_url=$(bash "$SRC/scripts/pg-test.sh" start "$tmp/pg")
pg_root=$(cat "$tmp/pg/root")
pg_port=$(sed -E 's|.*:([0-9]+)/[^/]*$|\1|' <<<"$pg_url")
newdb() {
	psql -X -q -h "$pg_root" -p "$pg_port" -U badge -d postgres -c "CREATE DATABASE $1" >/dev/null
	echo "${pg_url%/badge}/$1?pool_size=$POOL"
}

start() { # DIR STORE [ARGS]: starts a replica, prints its URL
	local d=$1 store=$2
	shift 2
	"$BIN" server --data-dir "$d" --listen 127.0.0.1:0 --threads "$THREADS" --public-port 443 --log-level warn \
		--store "$store" "$@" >"$d.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 300); do [[ -f $d/env ]] && break; sleep 0.1; done
	[[ -f $d/env ]] || { cat "$d.log" >&2; exit 1; }
	(source "$d/env" && echo "$BADGE_URL")
}

# An installation: vault kv1 with secret s1 readable by the administrator, an application with
# a certificate for client assertions. Sets URL1, VTOK, CLIENT, TENANT, CA.
install() { # DIR STORE
	URL1=$(start "$1" "$2")
	source "$1/env"
	export BADGE_DATA_DIR=$1
	TENANT=$BADGE_TENANT_ID CA=$BADGE_CA_FILE
	local id secret oid
	id=$(jq -r .clientId "$1/admin.json") secret=$(jq -r .clientSecret "$1/admin.json") oid=$(jq -r .objectId "$1/admin.json")
	"$BIN" group create -n rg >/dev/null
	"$BIN" keyvault create -g rg -n kv1 >/dev/null
	"$BIN" keyvault set-policy -n kv1 --object-id "$oid" --secret-permissions all >/dev/null
	"$BIN" keyvault secret set --vault-name kv1 --name s1 --value "bench-value-0123456789" >/dev/null
	VTOK=$(curl -sS --cacert "$CA" -d grant_type=client_credentials -d client_id="$id" --data-urlencode client_secret="$secret" \
		--data-urlencode scope="$BADGE_VAULT_RESOURCE/.default" "$URL1/$TENANT/oauth2/v2.0/token" | jq -r .access_token)
	CLIENT=$(jq -r .appId <<<"$("$BIN" directory principal create --display-name bench)")
	[[ -f $tmp/k.pem ]] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/k.pem" -out "$tmp/c.pem" -days 1 \
		-subj /CN=bench 2>/dev/null
	"$BIN" directory credential add-cert --id "$CLIENT" --cert "$tmp/c.pem" >/dev/null
}

wrk_rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
wrk_bad() { awk '/Non-2xx or 3xx responses/ {print $5} /non-200 responses/ {print $3}' "$1" | head -1; }

get_run() { # URL...: concurrent wrk per URL, summed rate
	local i=0 n=$# total=0 f
	for u in "$@"; do
		wrk -t$((2 / n > 0 ? 2 / n : 1)) -c$((CONNS / n)) -d"${SECS}s" -H "Authorization: Bearer $VTOK" \
			"$u/vaults/kv1/secrets/s1?api-version=7.4" >"$tmp/wrk.$i" &
		i=$((i + 1))
	done
	wait
	for ((i = 0; i < n; i++)); do
		f="$tmp/wrk.$i"
		[[ -z "$(wrk_bad "$f")" ]] || { echo "non-2xx responses in secret GET: $(cat "$f")" >&2; exit 1; }
		total=$(awk -v a="$total" -v b="$(wrk_rate "$f")" 'BEGIN {print a + b}')
	done
	echo "$total"
}

token_run() { # URL...: never-used assertions, split between the replicas
	local i=0 n=$# total=0 f per aud="https://login.badge.internal/$TENANT/oauth2/v2.0/token"
	per=$(awk -v s="$SECS" -v n="$n" 'BEGIN {printf "%d", (4000 * s * 1.5 + 1000) / n}')
	for ((i = 0; i < n; i++)); do "$GEN" "$tmp/k.pem" "$tmp/c.pem" "$CLIENT" "$aud" "$per" >"$tmp/assert.$i"; done
	i=0
	for u in "$@"; do
		ASSERTIONS=$tmp/assert.$i WRK_THREADS=$((2 / n > 0 ? 2 / n : 1)) TENANT=$TENANT CLIENT_ID=$CLIENT \
			SCOPE="https%3A%2F%2Fvault.badge.internal%2F.default" \
			wrk -t$((2 / n > 0 ? 2 / n : 1)) -c$((16 / n)) -d"${SECS}s" -s "$SRC/bench/token.lua" "$u" >"$tmp/wrk.$i" &
		i=$((i + 1))
	done
	wait
	for ((i = 0; i < n; i++)); do
		f="$tmp/wrk.$i"
		[[ "$(wrk_bad "$f")" == 0 ]] || { echo "refused token requests: $(cat "$f")" >&2; exit 1; }
		total=$(awk -v a="$total" -v b="$(wrk_rate "$f")" 'BEGIN {print a + b}')
	done
	echo "$total"
}

declare -A result
measure() { # NAME URL...
	local name=$1 r g=() t=()
	shift
	for ((r = 1; r <= RUNS; r++)); do
		[[ ${ONLY:-get} == get ]] && g+=("$(get_run "$@")") || g+=(0)
		[[ ${ONLY:-token} == token ]] && t+=("$(token_run "$@")") || t+=(0)
		echo "$name run $r: secret GET ${g[-1]}/s, token ${t[-1]}/s" >&2
	done
	result[$name.get]=$(printf '%s\n' "${g[@]}" | median)
	result[$name.token]=$(printf '%s\n' "${t[@]}" | median)
}

install "$tmp/sq" "sqlite:$tmp/sq/badge.db"
measure sqlite "$URL1"
stop_all

install "$tmp/p1" "$(newdb b1)"
measure pg1 "$URL1"
stop_all

db=$(newdb b2)
install "$tmp/a" "$db"
URL2=$(start "$tmp/b" "$db" --join-from "$tmp/a")
measure pg2 "$URL1" "$URL2"
if [[ -n ${KEEP:-} ]]; then
	echo "replicas: $URL1 $URL2 (CA $CA); press enter to stop" >&2
	read -r
fi
stop_all

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
cat <<EOT

| store | replicas | secret GET/s | token/s | GET vs SQLite | token vs SQLite |
| --- | --- | --- | --- | --- | --- |
| SQLite | 1 | ${result[sqlite.get]} | ${result[sqlite.token]} | 1.00 | 1.00 |
| PostgreSQL | 1 | ${result[pg1.get]} | ${result[pg1.token]} | $(ratio "${result[pg1.get]}" "${result[sqlite.get]}") | $(ratio "${result[pg1.token]}" "${result[sqlite.token]}") |
| PostgreSQL | 2 | ${result[pg2.get]} | ${result[pg2.token]} | $(ratio "${result[pg2.get]}" "${result[sqlite.get]}") | $(ratio "${result[pg2.token]}" "${result[sqlite.token]}") |

two replicas vs one on PostgreSQL: secret GET $(ratio "${result[pg2.get]}" "${result[pg1.get]}"), token $(ratio "${result[pg2.token]}" "${result[pg1.token]}")
(medians of $RUNS runs of ${SECS}s; $(nproc) cores shared by PostgreSQL, the replicas and wrk; server threads $THREADS, $CONNS connections for GETs, 16 for tokens)
EOT
