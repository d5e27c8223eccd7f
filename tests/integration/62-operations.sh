#!/usr/bin/env bash
# Operating a server: /healthz, /readyz, /metrics (Prometheus text: requests by route and
# status, latency histograms, tokens issued, store latency), SIGHUP (log level from the config
# file), SIGTERM (drains and exits 0); the reference configuration packaging/badge-server.conf
# lists exactly the settings of `badge server --help` with the same defaults; the systemd units
# parse.
source "$BADGE_SRC/tests/lib.sh"
dir=$(bt_tmpdir)
srv="$dir/server"

# the reference configuration cannot drift from server_conf_spec
help_settings() {
	"$BADGE_BIN" server --help | sed -n '/^settings/,$p' | tail -n +2 |
		/usr/bin/python3 -c '
import sys, re
for l in sys.stdin:
    m = re.match(r"^  (\S+)\s+(.*?)(?: \[(.*)\])?$", l.rstrip("\n"))
    if m and m.group(3) is not None: print(m.group(1), "=", m.group(3) or "\"\"")
    elif m: print(m.group(1))'
}
conf_settings() {
	/usr/bin/python3 - "$BADGE_SRC/packaging/badge-server.conf" <<'PY'
import sys, re
seen = set()
for l in open(sys.argv[1]):
    m = re.match(r"^#?([a-z0-9_]+) = ?(.*)$", l.rstrip("\n"))
    if not m or m.group(1) in seen: continue
    k, v = m.groups()
    seen.add(k)
    print(k if k in ("data_dir", "store") else f"{k} = {v}")
PY
}
diff <(help_settings | sort) <(conf_settings | sort) >"$dir/drift" ||
	bt_fail "packaging/badge-server.conf differs from badge server --help (< help, > file): $(cat "$dir/drift")"
"$BADGE_BIN" server --config "$BADGE_SRC/packaging/badge-server.conf" --check-config >/dev/null ||
	bt_fail "the reference configuration does not check"
if command -v systemd-analyze >/dev/null; then
	for u in "$BADGE_SRC"/packaging/systemd/*.service; do
		systemd-analyze verify "$u" 2>&1 | grep -v 'is not executable\|No such file' >"$dir/verify" || true
		[[ ! -s "$dir/verify" ]] || bt_fail "$(basename "$u"): $(cat "$dir/verify")"
	done
fi

printf 'log_level = info\n' >"$dir/server.conf"
bt_start_server "$srv" --config "$dir/server.conf"
c() { curl -sS --cacert "$BADGE_CA_FILE" "$@"; }
bt_assert_eq "$(c -o /dev/null -w '%{http_code}' "$BADGE_URL/healthz")" 200 "healthz"
c "$BADGE_URL/readyz" | jq -e '.status == "ready" and .keys == "loaded"' >/dev/null || bt_fail "readyz"
c -d grant_type=client_credentials -d client_id="$(jq -r .clientId "$srv/admin.json")" \
	--data-urlencode client_secret="$(jq -r .clientSecret "$srv/admin.json")" \
	--data-urlencode scope="$BADGE_VAULT_RESOURCE/.default" "$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" |
	jq -e .access_token >/dev/null || bt_fail "token"
c -o /dev/null "$BADGE_URL/$BADGE_TENANT_ID/discovery/v2.0/keys"
m=$(c -D "$dir/h" "$BADGE_URL/metrics")
grep -qi '^content-type: text/plain; version=0.0.4' "$dir/h" || bt_fail "metrics content type: $(cat "$dir/h")"
grep -q '^badge_http_requests_total{route="/healthz",method="GET",status="200"} 1$' <<<"$m" || bt_fail "healthz count: $m"
grep -q '^badge_http_requests_total{route="/{tenant}/oauth2/v2.0/token",method="POST",status="200"} 1$' <<<"$m" ||
	bt_fail "token route count"
grep -q '^badge_http_request_duration_seconds_bucket{route="/{tenant}/discovery/v2.0/keys",method="GET",status="200",le="+Inf"} 1$' <<<"$m" ||
	bt_fail "latency histogram"
grep -q '^badge_tokens_issued_total 1$' <<<"$m" || bt_fail "tokens issued"
grep -Eq '^badge_store_query_duration_seconds_count\{backend="(sqlite|postgres)",result="ok"\} [1-9]' <<<"$m" ||
	bt_fail "store latency"
# every sample line is NAME{...} VALUE or NAME VALUE; every name has a TYPE
/usr/bin/python3 - <<<"$m" <<'PY' || bt_fail "metrics exposition malformed"
import sys, re
types = set(); ok = True
for l in sys.stdin:
    l = l.rstrip("\n")
    if l.startswith("# TYPE "): types.add(l.split()[2]); continue
    if l.startswith("#") or not l: continue
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? [0-9.e+-]+$', l)
    base = re.sub(r"_(bucket|sum|count)$", "", m.group(1)) if m else None
    if not m or (m.group(1) not in types and base not in types): print("bad:", l); ok = False
sys.exit(0 if ok else 1)
PY

# SIGHUP: log level from the config file
printf 'log_level = debug\n' >"$dir/server.conf"
kill -HUP "$BT_SERVER_PID"
hup() { grep -q 'SIGHUP: log level debug' "$srv/server.log"; }
bt_wait_for hup
printf 'log_level = loud\n' >"$dir/server.conf"
kill -HUP "$BT_SERVER_PID"
bad() { grep -q "log_level 'loud' is not" "$srv/server.log"; }
bt_wait_for bad
kill -0 "$BT_SERVER_PID" || bt_fail "server died on a bad reload"

# SIGTERM: drains, exits 0
kill -TERM "$BT_SERVER_PID"
rc=0
wait "$BT_SERVER_PID" || rc=$?
bt_assert_eq "$rc" 0 "exit status after SIGTERM"
grep -q 'draining in-flight requests' "$srv/server.log" || bt_fail "no drain"
echo "ok 62-operations"
