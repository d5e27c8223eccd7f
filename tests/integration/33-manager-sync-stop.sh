#!/usr/bin/env bash
# The agent's sync long poll holds no server thread and does not hold up a stop: with an agent
# parked in a 60 s sync, the server answers other requests at once, sees a change reach the
# agent, and stops within a few seconds.
source "$BADGE_SRC/tests/lib.sh"
dir=$(bt_tmpdir)
bt_start_server "$dir/server"
srv_pid=$BT_SERVER_PID
b() { BADGE_DATA_DIR="$dir/server" "$BADGE_BIN" "$@"; }

join=$(b host create -n h1 | jq -r .joinToken)
[[ -n "$join" && "$join" != null ]] || bt_fail "no join token"
"$BADGE_BIN" agent --data-dir "$dir/agent" --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" --join-token "$join" \
	--isolation appservice --sync-timeout 60 >>"$dir/agent.log" 2>&1 </dev/null &
agent_pid=$!
bt_cleanup bt_stop "$agent_pid"
bt_log "$dir/agent.log"
enrolled() { b host show -n h1 | jq -e '.properties.state == "Enrolled"' >/dev/null; }
bt_wait_for enrolled
# the agent's first sync answered at once; its next one is parked for up to 60 s
parked() { grep -c "GET /badge/agent/v1/sync" "$dir/server/server.log" | grep -qv '^0$'; }
bt_wait_for parked

# other requests are served meanwhile (the poll holds no pool thread)
for i in 1 2 3 4 5 6; do
	BADGE_DATA_DIR="$dir/server" timeout 10 "$BADGE_BIN" group create -n "g$i" >/dev/null || bt_fail "a request was not served while the agent polls"
done
# a change for the host reaches the agent through its parked poll
b group create -n rg >/dev/null
b vm create -g rg -n vm1 --assign-identity >/dev/null
seen() { "$BADGE_BIN" agent status --data-dir "$dir/agent" 2>/dev/null | grep -q vm1; }
bt_wait_for seen

# stopping the server does not wait for the parked poll
start=$SECONDS
kill -TERM "$srv_pid"
end=$((SECONDS + 10))
while kill -0 "$srv_pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.1; done
kill -0 "$srv_pid" 2>/dev/null && bt_fail "the server did not stop within 10 s with an agent's sync parked"
echo "server stopped in $((SECONDS - start)) s"
echo "ok 33-manager-sync-stop"
