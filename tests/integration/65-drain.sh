#!/usr/bin/env bash
# SIGTERM with requests in flight (docs/operations.md, "Signals"). While parked long polls (the
# host sync, driven as the host with the agent's key), slow vault secret uploads and loops of
# token requests are in flight (tests/integration/drain_client.py), the server gets SIGTERM:
# every request it had taken gets a complete, well-formed answer (the parked polls at once, the
# uploads when their bodies are in), /readyz on a kept-alive connection turns 503, new
# connections are refused while it still drains, it exits 0 within its drain bound, and every
# write acknowledged before or during the drain is there after a restart. Runs on SQLite
# (integration/65-drain) and PostgreSQL (pg/integration/65-drain).
source "$BADGE_SRC/tests/lib.sh"
DRAIN_BOUND=${BADGE_DRAIN_BOUND:-20} # BC_LIMIT_HTTP_DRAIN_MS, documented in docs/operations.md
dir=$(bt_tmpdir)
srv="$dir/server"
state="$dir/state"
mkdir -p "$state"
bt_start_server "$srv" --public-port 443 # tokens stay valid across the restart on a new port
pid=$BT_SERVER_PID
b() { BADGE_DATA_DIR="$srv" "$BADGE_BIN" "$@"; }
bt_admin_api "$srv" "$dir/body"

# a vault the administrator may write secrets to
bt_admin_vault kv1
vtok=$BT_VTOK
put_secret() {
	code -X PUT -H "Authorization: Bearer $vtok" -H 'Content-Type: application/json' -d "{\"value\":\"$2\"}" \
		"$BADGE_URL/vaults/kv1/secrets/$1?api-version=7.4"
}
bt_assert_eq "$(put_secret before-term acked-before)" 200 "a write before SIGTERM"

# a host whose agent enrols once; the traffic then long-polls as that host with its key
join=$(b host create -n h1 | jq -r .joinToken)
[[ -n "$join" && "$join" != null ]] || bt_fail "no join token"
bt_spawn "$dir/agent.log" "$BADGE_BIN" agent --data-dir "$dir/agent" --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" \
	--join-token "$join" --isolation appservice
agent_pid=$BT_PID
enrolled() { [[ -f "$dir/agent/host.json" ]] && b host show -n h1 | jq -e '.properties.state == "Enrolled"' >/dev/null; }
bt_wait_for enrolled
bt_stop "$agent_pid"

# the traffic; it says when everything is in flight
STATE=$state AGENT_DIR="$dir/agent" VAULT_TOKEN=$vtok ADMIN_ID=$BT_ADMIN_ID ADMIN_SECRET=$BT_ADMIN_SECRET \
	BADGE_URL=$BADGE_URL BADGE_CA_FILE=$BADGE_CA_FILE BADGE_TENANT_ID=$BADGE_TENANT_ID \
	BADGE_MANAGEMENT_RESOURCE=$BADGE_MANAGEMENT_RESOURCE \
	/usr/bin/python3 "$BADGE_SRC/tests/integration/drain_client.py" >"$dir/report.json" 2>"$dir/client.log" &
client=$!
stop_client() { kill "$1" 2>/dev/null || true; }
bt_cleanup stop_client "$client"
bt_log "$dir/client.log"
ready() {
	kill -0 "$client" 2>/dev/null || { cat "$dir/report.json" >&2; bt_fail "the traffic ended before it was in flight"; }
	[[ -f "$state/ready" ]]
}
bt_wait_for ready

# SIGTERM, with everything in flight
date +%s.%N >"$state/term.tmp" && mv "$state/term.tmp" "$state/term"
t0=$(date +%s.%N)
kill -TERM "$pid"

# the listener closes at once, while the uploads keep the process draining (a process that has
# exited but is not reaped yet is a zombie: kill -0 still finds it)
running() { local s; s=$(ps -o stat= -p "$pid") && [[ $s != Z* ]]; }
refused() {
	local rc=0
	running || bt_fail "the server exited before a new connection was seen refused"
	curl -sS -o /dev/null --cacert "$BADGE_CA_FILE" -m 5 "$BADGE_URL/healthz" 2>/dev/null || rc=$?
	((rc == 7)) # connection refused
}
bt_wait_for refused
running || bt_fail "the server exited before its in-flight uploads were in"

# it exits 0 within the drain bound
end=$((SECONDS + DRAIN_BOUND + 2))
while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.1; done
kill -0 "$pid" 2>/dev/null && bt_fail "the server still runs $DRAIN_BOUND s after SIGTERM"
rc=0
wait "$pid" || rc=$?
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
bt_assert_eq "$rc" 0 "exit status after SIGTERM"
grep -q 'draining in-flight requests' "$srv/server.log" || bt_fail "no drain in the log"
! grep -q 'not answered at stop\|requests in flight cut' "$srv/server.log" || bt_fail "the drain gave up: $(grep 'at stop' "$srv/server.log")"

# every request that reached the server got its whole answer
crc=0
wait "$client" || crc=$?
cat "$dir/report.json"
((crc == 0)) || bt_fail "requests in flight were not answered: $(jq -c .failures "$dir/report.json")"
jq -e '(.polls | length) == 4 and all(.polls[]; .status == 200)' "$dir/report.json" >/dev/null || bt_fail "parked polls"
jq -e '(.uploads | length) == 3' "$dir/report.json" >/dev/null || bt_fail "uploads not all acknowledged"
jq -e '.refused >= 1 and .tokens_before >= 12' "$dir/report.json" >/dev/null || bt_fail "token loops"
jq -e '.readyz.status == "not ready" and .readyz.reason == "draining"' "$dir/report.json" >/dev/null ||
	bt_fail "/readyz while draining: $(jq -c .readyz "$dir/report.json")"

# nothing acknowledged is lost: the write before SIGTERM and every upload answered during the drain
bt_start_server "$srv" --public-port 443
vtok=$(token "$BADGE_VAULT_RESOURCE")
check_secret() {
	bt_assert_eq "$(code -H "Authorization: Bearer $vtok" "$BADGE_URL/vaults/kv1/secrets/$1?api-version=7.4")" 200 "secret $1 after restart"
	bt_assert_eq "$(jq -r .value "$dir/body")" "$2" "secret $1's value after restart"
}
check_secret before-term acked-before
while read -r name value; do
	check_secret "$name" "$value"
done < <(jq -r '.uploads[] | "\(.name) \(.value)"' "$dir/report.json")
echo "ok 65-drain (stopped in ${took} s)"
