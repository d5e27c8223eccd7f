#!/usr/bin/env bash
# The metadata endpoint, measured from inside an instance (root: network namespaces).
#  1. Cached token requests per second with wrk (the instance's rate limit lifted for the run),
#     next to nginx serving the same bytes over HTTP from inside the same instance namespace,
#     measured in the same run (runs alternate); medians of RUNS runs; the ratio of the medians.
#  2. The latency of a first (uncached) token: N user-assigned identities on the instance, each
#     asked once (curl's time_total inside the instance); the median and the 90th percentile.
# Everything lives in a namespace this script creates; nothing outside it is contacted.
# Writes the figures into docs/benchmarks.md under "## Metadata endpoint" (BENCH_NO_DOC=1: don't).
# usage: bench/imds.sh [RUNS] [SECONDS] [N]
set -euo pipefail
RUNS=${1:-5}
SECS=${2:-5}
N=${3:-30}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BADGE_BUILD:-$SRC/build/dev}
BIN=${BADGE_BIN:-$BUILD/badge}
[[ -x $BIN ]] || { echo "build first (make build)"; exit 1; }
[[ $(id -u) == 0 ]] || { echo "bench/imds.sh needs root (network namespaces)"; exit 1; }
for t in wrk nginx jq curl; do command -v $t >/dev/null || { echo "$t missing (scripts/install-deps.sh)"; exit 1; }; done
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32}

T="bimds-$$" PFX="bi$$-"
tmp=$(mktemp -d /tmp/badge-bench-imds.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	ip netns del "$T" 2>/dev/null || true
	for f in /run/netns/"$PFX"*; do [[ -e $f ]] && ip netns del "${f##*/}" 2>/dev/null; done
	rm -rf /etc/netns/"$PFX"* "$tmp"
}
trap cleanup EXIT
wait_for() { local end=$((SECONDS + ${WAIT:-30})); until "$@" 2>/dev/null; do ((SECONDS < end)) || { echo "timed out: $*" >&2; exit 1; }; sleep 0.1; done; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; print a[i]}'; }

ip netns add "$T"
ip -n "$T" link set lo up
S="$tmp/server" A="$tmp/agent"
mkdir -p "$S"
ip netns exec "$T" "$BIN" server --data-dir "$S" --listen 0.0.0.0:0 --log-level warn >"$tmp/server.log" 2>&1 </dev/null &
pids+=($!)
wait_for test -f "$S/env"
# shellcheck disable=SC1091
source "$S/env"
export BADGE_DATA_DIR=$S
b() { ip netns exec "$T" "$BIN" "$@"; }
b host create -n h1 >/dev/null 2>&1 || true
JOIN=$(b host join-token -n h1 2>/dev/null | jq -r '.joinToken // empty' || true)
if [[ -z $JOIN ]]; then # through the resource manager directly
	TOK=$(ip netns exec "$T" curl -sSf --cacert "$BADGE_CA_FILE" --data-urlencode "client_id=$(jq -r .clientId "$S/admin.json")" \
		--data-urlencode "client_secret=$(jq -r .clientSecret "$S/admin.json")" \
		--data-urlencode "scope=${BADGE_MANAGEMENT_RESOURCE}.default" -d grant_type=client_credentials \
		"$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" | jq -r .access_token)
	H="/subscriptions/$BADGE_SUBSCRIPTION_ID/providers/Badge.Compute/hosts/h1"
	ip netns exec "$T" curl -sSf --cacert "$BADGE_CA_FILE" -X PUT -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
		-d '{"location":"local","properties":{}}' "$BADGE_URL$H?api-version=2023-03-01" >/dev/null
	JOIN=$(ip netns exec "$T" curl -sSf --cacert "$BADGE_CA_FILE" -X POST -H "Authorization: Bearer $TOK" \
		"$BADGE_URL$H/joinToken?api-version=2023-03-01" | jq -r .joinToken)
fi
ip netns exec "$T" "$BIN" agent --data-dir "$A" --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" --isolation netns \
	--netns-prefix "$PFX" --netns-subnet 10.249.0.0 --unlimited --sync-timeout 5 --log-level warn --join-token "$JOIN" \
	${BENCH_AGENT_ARGS:-} \
	>"$tmp/agent.log" 2>&1 </dev/null &
pids+=($!)

b group create -n rgb >/dev/null
ids=()
for i in $(seq "$N"); do
	ids+=("$(b identity create -g rgb -n "uai$i" | jq -r .id)")
done
b vm create -g rgb -n vm1 --assign-identity "[system]" "${ids[@]}" >/dev/null
ready() {
	"$BIN" agent status --data-dir "$A" | jq -e --argjson n $((N + 1)) \
		'.instances[] | select(.name == "vm1") | (.identities | length) == $n and all(.identities[]; .credential)' >/dev/null
}
WAIT=300 wait_for ready # one key pair and certificate per identity, in sequence
in_vm() { "$BIN" vm exec --data-dir "$A" vm1 -- "$@"; }
URL="http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$BADGE_MANAGEMENT_RESOURCE"

# ---- 2 first: first (uncached) tokens, one per user-assigned identity, in sequence ----------
lat=()
for id in "${ids[@]}"; do
	enc=$(jq -rn --arg v "$id" '$v|@uri')
	t=$(in_vm curl -sS -o /dev/null -w '%{http_code} %{time_total}' -H Metadata:true "$URL&msi_res_id=$enc")
	[[ ${t% *} == 200 ]] || { echo "first token: status ${t% *}" >&2; exit 1; }
	lat+=("$(awk '{printf "%.3f", $2 * 1000}' <<<"$t")")
done
lat_med=$(printf '%s\n' "${lat[@]}" | median)
lat_p90=$(printf '%s\n' "${lat[@]}" | pct 90)

# ---- 1: cached throughput, next to nginx serving the same bytes in the same namespace -------
in_vm curl -sS -H Metadata:true "$URL" >"$tmp/token.json"
jq -e .access_token "$tmp/token.json" >/dev/null
mkdir -p "$tmp/www/metadata/identity/oauth2" "$tmp/nginx"
cp "$tmp/token.json" "$tmp/www/metadata/identity/oauth2/token"
PORT=$(in_vm python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $THREADS;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx/body;
	proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi;
	uwsgi_temp_path $tmp/nginx/uwsgi;
	scgi_temp_path $tmp/nginx/scgi;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$PORT;
		root $tmp/www;
		location / { default_type application/json; }
	}
}
EOF
"$BIN" vm exec --data-dir "$A" vm1 -- nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.out" 2>&1 </dev/null &
pids+=($!)
NGINX_URL="http://127.0.0.1:$PORT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$BADGE_MANAGEMENT_RESOURCE"
wait_for in_vm curl -sSf -o /dev/null "$NGINX_URL"
cmp -s <(in_vm curl -sS "$NGINX_URL" | jq -S 'del(.expires_in)') <(jq -S 'del(.expires_in)' "$tmp/token.json") ||
	{ echo "nginx does not serve the same bytes" >&2; exit 1; }
bytes=$(wc -c <"$tmp/token.json")

rps() { # URL: requests/s of one wrk run inside the instance
	in_vm wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" -H 'Metadata: true' "$1" |
		awk '/^Requests\/sec:/ {print $2} /Non-2xx/ {bad=1} END {if (bad) print "non-2xx" > "/dev/stderr"}'
}
imds=() ngx=()
for r in $(seq "$RUNS"); do
	imds+=("$(rps "$URL")")
	ngx+=("$(rps "$NGINX_URL")")
	echo "run $r: metadata endpoint ${imds[-1]} req/s, nginx ${ngx[-1]} req/s" >&2
done
imds_med=$(printf '%s\n' "${imds[@]}" | median)
ngx_med=$(printf '%s\n' "${ngx[@]}" | median)
ratio=$(awk -v a="$imds_med" -v b="$ngx_med" 'BEGIN {printf "%.2f", a / b}')
# each run's pair ran back to back: the median of their ratios is steadier on a busy machine
pair_ratio=$(for i in "${!imds[@]}"; do awk -v a="${imds[$i]}" -v b="${ngx[$i]}" 'BEGIN {printf "%.3f\n", a / b}'; done | median)

cpu=$(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
ncpu=$(nproc)
rev=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
load=$(cut -d' ' -f1-3 /proc/loadavg)
report=$(cat <<EOF
## Metadata endpoint

\`bench/imds.sh $RUNS $SECS $N\` ($(date -u +%Y-%m-%d), commit $rev, $cpu, $ncpu CPUs; server,
agent, wrk and nginx on the same machine; load average at the end: $load). Everything runs inside network namespaces the script
creates; the client is inside the instance's namespace, as an application would be.

| what | figure |
| --- | --- |
| cached token requests/s, metadata endpoint (median of $RUNS × ${SECS}s, wrk -t$THREADS -c$CONNS) | $imds_med |
| nginx serving the same $bytes bytes over HTTP in the same namespace, same run | $ngx_med |
| **ratio** of the medians (target ≥ 0.7) | **$ratio** |
| median of the per-run ratios (each pair back to back) | $pair_ratio |
| first (uncached) token, median of $N identities (curl time_total inside the instance${BENCH_AGENT_ARGS:+; agent $BENCH_AGENT_ARGS}) | $lat_med ms |
| first (uncached) token, 90th percentile | $lat_p90 ms |

Runs (req/s, endpoint / nginx): $(for i in "${!imds[@]}"; do printf '%s / %s; ' "${imds[$i]}" "${ngx[$i]}"; done)
The rate limit of the instance is lifted for the run (\`badge agent --unlimited\`); the agent
serves each instance with 4 HTTP threads, nginx runs $THREADS workers. A first token costs one
client assertion (a signature by the identity's key on the host, EC P-256 unless the agent is given --key-type RSA) and one token request
to the server over HTTPS; later requests for the same identity and resource come from the cache.
EOF
)
echo "$report"
if [[ -z ${BENCH_NO_DOC:-} ]]; then
	doc=$SRC/docs/benchmarks.md
	[[ -f $doc ]] || printf '# Benchmarks\n\nFigures measured on this machine; each section says how to reproduce it.\n' >"$doc"
	# replace our section (up to the next "## " heading), keep everyone else's
	awk -v new="$report" '
		/^## / { if (skip) skip = 0; if ($0 == "## Metadata endpoint") { skip = 1; if (!done) { print new; print ""; done = 1 } ; next } }
		!skip { print }
		END { if (!done) { print ""; print new } }' "$doc" >"$doc.tmp"
	mv "$doc.tmp" "$doc"
	echo "written to $doc (section \"## Metadata endpoint\")" >&2
fi
