#!/usr/bin/env bash
# Secret GETs per second over HTTPS keep-alive with a bearer token (wrk -t2 -c64), as a ratio to
# nginx serving the same bytes over HTTPS in the same run (nginx measured right before badge in
# every round, with a certificate of the same kind from badge's CA); then, with BIG secrets in one
# vault (bulk-loaded), the GET latency median against the same figure at 1,000 secrets, and the
# server's resident memory. Medians of RUNS rounds. The load generator shares the machine's cores
# with the server.
# usage: bench/vault.sh [RUNS] [SECONDS] [BIG]     (BIG=0 skips the large vault)
#   env: BADGE_BUILD (default build/perf), THREADS (server pool, default 2), CONNS (64),
#        SERVER_ARGS (extra server flags, e.g. "--log-level warn"), LIMIT_ARGS (throttling flags;
#        default "--vault-limit-secrets 1000000000": never reached, the bucket still taken; "" for a
#        build without throttling),
#        PROFILE=FILE: perf record -g the server during the first badge round into FILE,
#        HOLD=FILE: set up, write url/token/cafile/server_pid to FILE, wait until FILE is removed
set -euo pipefail
RUNS=${1:-3}
SECS=${2:-10}
BIG=${3:-1000000}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BADGE_BUILD:-$SRC/build/perf}
BIN=$BUILD/badge
LOAD=$BUILD/bench/bench_vault_load
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
[[ -x $BIN && ( $BIG -eq 0 || -x $LOAD ) ]] || { echo "build first: cmake --build $BUILD"; exit 1; }
for t in wrk nginx jq curl openssl; do command -v $t >/dev/null || { echo "$t missing"; exit 1; }; done

tmp=$(mktemp -d /tmp/badge-bench-vault.XXXXXX)
pid=
npid=
stop_server() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
cleanup() {
	stop_server
	[[ -n $npid ]] && kill "$npid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
[[ -n ${KEEP_TMP:-} ]] && trap "stop_server; [[ -n \$npid ]] && kill \$npid" EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
deadline_wait() { # file, seconds
	for _ in $(seq $(($2 * 10))); do [[ -s $1 ]] && return 0; sleep 0.1; done
	return 1
}

start_server() {
	# a limit no run reaches, so the throttle's bucket is taken on every GET (its cost is measured)
	"$BIN" server --data-dir "$tmp/srv" --listen 127.0.0.1:0 --threads "$THREADS" \
		${LIMIT_ARGS---vault-limit-secrets 1000000000} ${SERVER_ARGS:-} >"$tmp/server.log" 2>&1 &
	pid=$!
	rm -f "$tmp/srv/env.seen"
	deadline_wait "$tmp/srv/env" 30 || { cat "$tmp/server.log"; exit 1; }
	# the env file of a restarted server: wait until it answers
	for _ in $(seq 100); do
		source "$tmp/srv/env"
		curl -s -o /dev/null --cacert "$BADGE_CA_FILE" "$BADGE_URL/.well-known/openid-configuration" && return 0
		sleep 0.1
	done
	echo "server did not answer"; exit 1
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

start_server
export BADGE_DATA_DIR=$tmp/srv
c() { curl -sS --cacert "$BADGE_CA_FILE" "$@"; }
admin_id=$(jq -r .clientId "$tmp/srv/admin.json")
admin_secret=$(jq -r .clientSecret "$tmp/srv/admin.json")
token_for() {
	c -d grant_type=client_credentials -d client_id="$admin_id" --data-urlencode client_secret="$admin_secret" \
		--data-urlencode scope="$1/.default" "$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" | jq -r .access_token
}
mtok=$(token_for "$BADGE_MANAGEMENT_RESOURCE")
vtok=$(token_for "$BADGE_VAULT_RESOURCE")
oid=$(/usr/bin/python3 -c 'import sys,json,base64; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"=="*2))["oid"])' "$mtok")
sub=$BADGE_SUBSCRIPTION_ID
arm() { c -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $mtok" -H 'Content-Type: application/json' "$@"; }
mkvault() {
	arm -d "{\"location\":\"local\",\"properties\":{\"tenantId\":\"$BADGE_TENANT_ID\",\"sku\":{\"family\":\"A\",\"name\":\"standard\"},
	\"accessPolicies\":[{\"tenantId\":\"$BADGE_TENANT_ID\",\"objectId\":\"$oid\",\"permissions\":{\"secrets\":[\"all\"]}}]}}" \
		"$BADGE_URL/subscriptions/$sub/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/$1?api-version=2023-07-01"
}
[[ $(arm -d '{"location":"local"}' "$BADGE_URL/subscriptions/$sub/resourcegroups/rg1?api-version=2021-04-01") == 20? ]]
[[ $(mkvault kvsmall) == 20? ]] || { echo "cannot create a vault"; exit 1; }
[[ $BIG -gt 0 ]] && { [[ $(mkvault kvbig) == 20? ]] || { echo "cannot create a vault"; exit 1; }; }
put_secret() { # vault name value
	c -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $vtok" -H 'Content-Type: application/json' \
		-d "{\"value\":\"$3\"}" "$BADGE_URL/vaults/$1/secrets/$2?api-version=7.4"
}
value=bench-value-0123456789abcdef
[[ $(put_secret kvsmall s1 "$value") == 200 ]] || { echo "cannot set a secret"; exit 1; }
url="$BADGE_URL/vaults/kvsmall/secrets/s1?api-version=7.4"
c -H "Authorization: Bearer $vtok" -o "$tmp/body" "$url"
jq -e --arg v "$value" '.value == $v' "$tmp/body" >/dev/null || { echo "GET: $(cat "$tmp/body")"; exit 1; }
size=$(stat -c %s "$tmp/body")

# nginx: the same bytes, same content type, a certificate of the same kind signed by badge's CA
mkdir -p "$tmp/nginx/www"
cp "$tmp/body" "$tmp/nginx/www/s1"
chmod 755 "$tmp" "$tmp/nginx" "$tmp/nginx/www" && chmod 644 "$tmp/nginx/www/s1" # nginx's workers run as nobody
leaf_alg=$(openssl s_client -connect "127.0.0.1:$BADGE_PORT" </dev/null 2>/dev/null | openssl x509 -noout -text |
	awk '/Public Key Algorithm/ {print $4; exit}')
if [[ $leaf_alg == rsaEncryption ]]; then
	openssl req -new -newkey rsa:2048 -nodes -keyout "$tmp/nginx/k.pem" -subj /CN=127.0.0.1 -out "$tmp/nginx/csr" 2>/dev/null
else
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/nginx/k.pem" -subj /CN=127.0.0.1 \
		-out "$tmp/nginx/csr" 2>/dev/null
fi
printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/nginx/ext"
openssl x509 -req -in "$tmp/nginx/csr" -CA "$tmp/srv/ca.pem" -CAkey "$tmp/srv/ca.key" -CAcreateserial -days 1 \
	-extfile "$tmp/nginx/ext" -out "$tmp/nginx/c.pem" 2>/dev/null
nport=$(free_port)
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
	access_log off;
	keepalive_requests 1000000;
	default_type application/json;
	server {
		listen 127.0.0.1:$nport ssl;
		ssl_certificate $tmp/nginx/c.pem;
		ssl_certificate_key $tmp/nginx/k.pem;
		root $tmp/nginx/www;
		location / { types {} default_type "application/json; charset=utf-8"; }
	}
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
npid=$!
for _ in $(seq 100); do curl -s -o /dev/null --cacert "$BADGE_CA_FILE" "https://127.0.0.1:$nport/s1" && break; sleep 0.1; done
cmp -s "$tmp/body" <(curl -s --cacert "$BADGE_CA_FILE" "https://127.0.0.1:$nport/s1") || { echo "nginx does not serve the body"; exit 1; }

if [[ -n ${HOLD:-} ]]; then # for profiling by hand: the set-up stays up until $HOLD is removed
	printf 'url=%q\ntoken=%q\ncafile=%q\nserver_pid=%s\nnginx_url=%q\n' "$url" "$vtok" "$BADGE_CA_FILE" "$pid" \
		"https://127.0.0.1:$nport/s1" >"$HOLD"
	while [[ -e $HOLD ]]; do sleep 1; done
	exit 0
fi

rps() { # url [header]
	local out
	if [[ $# -gt 1 ]]; then
		out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -H "$2" "$1")
	else
		out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "$1")
	fi
	local bad
	bad=$(awk '/Non-2xx/ {print $4}' <<<"$out")
	[[ -z $bad ]] || echo "  non-2xx responses: $bad" >&2
	awk '/Requests\/sec/ {print $2}' <<<"$out"
}
nrates=() brates=() ratios=()
for r in $(seq "$RUNS"); do
	n=$(rps "https://127.0.0.1:$nport/s1")
	if [[ -n ${PROFILE:-} && $r == 1 ]]; then
		perf record ${PERF_ARGS:--g} -o "$PROFILE" -p "$pid" -- sleep "$SECS" 2>/dev/null &
		ppid=$!
	fi
	b=$(rps "$url" "Authorization: Bearer $vtok")
	[[ -n ${ppid:-} ]] && { wait "$ppid" || true; ppid=; }
	ratio=$(awk -v a="$b" -v b="$n" 'BEGIN {printf "%.2f", a / b}')
	echo "round $r: nginx $n/s, badge $b/s, ratio $ratio" >&2
	nrates+=("$n") brates+=("$b") ratios+=("$ratio")
done
kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null || true
npid=
nmed=$(printf '%s\n' "${nrates[@]}" | median)
bmed=$(printf '%s\n' "${brates[@]}" | median)
rmed=$(printf '%s\n' "${ratios[@]}" | median)
printf 'response body: %s bytes; server threads: %s; wrk -t2 -c%s, %ss per run\n' "$size" "$THREADS" "$CONNS" "$SECS"
printf 'nginx HTTPS (median of %d): %s req/s\n' "$RUNS" "$nmed"
printf 'badge secret GET (median of %d): %s req/s\n' "$RUNS" "$bmed"
printf 'ratio (median of the per-round ratios): %s (target >= 0.6)\n' "$rmed"
printf 'server RSS after the GET runs: %s kB\n' "$(rss_kb)"

[[ $BIG -gt 0 ]] || exit 0

# latency: one connection, sequential GETs of random secrets among the first N names
latency() { # vault count
	/usr/bin/python3 - "$BADGE_PORT" "$BADGE_CA_FILE" "$vtok" "$1" "$2" <<'EOF'
import http.client, ssl, sys, time, random, statistics
port, ca, tok, vault, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx)
rnd = random.Random(7)
lat = []
for i in range(3000):
    name = "s%d" % rnd.randrange(n)
    t = time.perf_counter()
    conn.request("GET", "/vaults/%s/secrets/%s?api-version=7.4" % (vault, name), headers={"Authorization": "Bearer " + tok})
    r = conn.getresponse(); r.read()
    if r.status != 200:
        sys.exit("GET %s: %d" % (name, r.status))
    if i >= 300:
        lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print("%.3f %.3f" % (statistics.median(lat), lat[int(len(lat) * 0.99)]))
EOF
}
# 1,000 secrets first (in the big vault: the same vault, measured before and after it grows)
stop_server
t0=$(date +%s)
"$LOAD" "$tmp/srv" kvbig 0 1000 "$value" >&2
start_server
vtok=$(token_for "$BADGE_VAULT_RESOURCE") # the audience names the port, new at each start
small_lat=$(latency kvbig 1000)
rss_small=$(rss_kb)
stop_server
"$LOAD" "$tmp/srv" kvbig 1000 $((BIG - 1000)) "$value" >&2
t1=$(date +%s)
start_server
vtok=$(token_for "$BADGE_VAULT_RESOURCE")
big_lat=$(latency kvbig "$BIG")
rss_big=$(rss_kb)
printf 'bulk load of %s secrets: %ss\n' "$BIG" $((t1 - t0))
printf 'GET latency, 1 connection, median / p99 ms: 1,000 secrets %s; %s secrets %s\n' "$small_lat" "$BIG" "$big_lat"
printf 'ratio of medians: %s (target <= 1.5)\n' "$(awk -v a="${big_lat% *}" -v b="${small_lat% *}" 'BEGIN {printf "%.2f", a / b}')"
printf 'server RSS: %s kB at 1,000 secrets, %s kB at %s secrets (target < 200 MB)\n' "$rss_small" "$rss_big" "$BIG"
printf 'database size: %s\n' "$(du -sh "$tmp/srv" | cut -f1)"
