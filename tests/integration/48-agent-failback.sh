#!/usr/bin/env bash
# An agent given two server replicas fails back to the first (root: network namespaces;
# PostgreSQL only, as pg/integration/48-agent-failback: replicas share a database). Inside a
# namespace T of its own: two replicas on one database, an agent preferring the first with
# --failback-interval 3. While an instance asks for tokens all along, the first replica is
# killed: the agent moves to the second; it tries the first again while it is still down (and
# the instance sees nothing of it); the first restarts on its address: within the interval and
# a sync the agent is back on it (its status, its /metrics, the restarted replica's log), a
# new instance gets its certificate and an uncached token through it, and the instance never
# saw a failed token request. The interval is well under the default 30 s, so the deadlines
# below hold only if the flag is honoured.
source "${BADGE_SRC:?}/tests/lib.sh"
source "$BADGE_SRC/tests/topology.sh"
bt_topo_begin 48
bt_pg_require
FAILBACK=3

db=$(bt_pg_newdb)
bt_topo_replicas "$db" # mgmt talks to the second replica from here on

JOIN=$(bt_topo_host h1)
BADGE_URL=$U1 bt_topo_agent "$A" 10.248.0.0 --join-token "$JOIN" --server "$U2" --ops-listen 127.0.0.1:0 \
	--failback-interval "$FAILBACK"
bt_topo_instances rg48
OID1=$(vm_put vm1)
[[ $OID1 =~ ^[0-9a-f-]{36}$ ]] || bt_fail "vm1 without a principal"

bt_topo_imds
bt_wait_for ready vm1
bt_assert_eq "$(token vm1 "$BADGE_MANAGEMENT_RESOURCE")" "$OID1" "vm1's token through the first replica"
bt_assert_eq "$(status | jq -r .server)" "$U1" "server in use at start"
OPS=$(status | jq -r .opsEndpoint)
[[ $OPS =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || bt_fail "no operations endpoint in the status: $OPS"
metric() { # NAME: its value in the agent's /metrics, 0 when absent
	inT curl -sS -o "$work/ops.body" "$OPS/metrics" || bt_fail "/metrics did not answer"
	awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' "$work/ops.body"
}
using() { # URL: the agent says it uses URL, in its status and its /metrics
	[[ $(status | jq -r .server) == "$1" ]] && (($(metric "badge_agent_server_active{url=\"$1\"}") == 1))
}

# vm1 asks for a token all along (cached by the agent: what matters is that it never fails);
# each line of the log is an HTTP status
: >"$work/tokens"
in_vm vm1 bash -c 'while :; do
	curl -s -o /dev/null -m 20 -w "%{http_code}\n" -H Metadata:true "$1" >>"$2" || echo "curl-$?" >>"$2"
	sleep 0.2 # the pace of an instance asking, well under the agent'\''s 20/s limit
done' _ "$IMDS&resource=$(jq -rn --arg r "$BADGE_MANAGEMENT_RESOURCE" '$r|@uri')" "$work/tokens" \
	>>"$work/tokens.err" 2>&1 </dev/null &
loop=$!
stop_loop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
bt_cleanup stop_loop "$loop"
asked() { (($(wc -l <"$work/tokens") >= $1)); }
bt_wait_for asked 3

# the first replica dies: the agent moves to the second; an uncached token comes through it
kill -9 "$SPID1"
wait "$SPID1" 2>/dev/null || true
vault_token() { [[ $(token vm1 "$BADGE_VAULT_RESOURCE") == "$OID1" ]]; }
bt_wait_for vault_token
bt_wait_for using "$U2"
failover_at=$SECONDS

# while the first is still down, the agent tries it again (every $FAILBACK s) and stays on the
# second: each try is one more "server U1: ... trying the next one" in its log
tries() { grep -cF "agent: server $U1:" "$A.log" || true; }
first_tries=$(tries)
tried_again() { (($(tries) > first_tries)); }
bt_wait_for tried_again
using "$U2" || bt_fail "the agent left the second replica while the first was down"
n=$(wc -l <"$work/tokens")
bt_wait_for asked $((n + 3))

# the first replica comes back on its address: the agent returns to it within the interval
# and a sync (--sync-timeout 5), far sooner than the default 30 s
lines=$(wc -l <"$S1.log")
ip netns exec "$T" "$BADGE_BIN" server --data-dir "$S1" --listen "0.0.0.0:$P1" --store "$db" --public-port 443 \
	>>"$S1.log" 2>&1 </dev/null &
SPID1=$!
bt_cleanup bt_stop "$SPID1"
up() { inT curl -sf --cacert "$CA" -o /dev/null "$U1/readyz"; }
bt_wait_for up
back_from=$SECONDS
BT_WAIT_TIMEOUT=$((FAILBACK + 5 + 10)) bt_wait_for using "$U1"
echo "failed back $((SECONDS - back_from)) s after the first replica was ready ($((SECONDS - failover_at)) s after the failover)"
(($(metric badge_agent_server_switches_total) >= 2)) || bt_fail "switches not counted: $(grep switches "$work/ops.body")"
since_restart() { tail -n +"$((lines + 1))" "$S1.log"; }
# the server's log is buffered (flushed every BC_LOG_FLUSH_MS): poll for its lines
logged() { since_restart | grep -q "$1"; }
bt_wait_for logged 'access GET /badge/agent/v1/sync ' # the restarted first replica sees the agent's sync

# a new instance gets its certificate and an uncached token through the first replica
OID2=$(vm_put vm2)
bt_wait_for ready vm2
bt_assert_eq "$(token vm2 "$BADGE_VAULT_RESOURCE")" "$OID2" "vm2's token"
using "$U1" || bt_fail "the agent left the first replica again"
bt_wait_for logged 'access POST /badge/agent/v1/certificates 200' # vm2's certificate came from the first replica
bt_wait_for logged 'access POST /{tenant}/oauth2/token 200'          # and its token

# vm1 asked all along and was never refused
n=$(wc -l <"$work/tokens")
bt_wait_for asked $((n + 3))
stop_loop "$loop"
bad=$(grep -cv '^200$' "$work/tokens" || true)
((bad == 0)) || bt_fail "vm1's token requests failed during the failover and failback: $(sort "$work/tokens" | uniq -c | tr '\n' ' ')"
echo "PASS 48-agent-failback ($(wc -l <"$work/tokens") token requests from vm1, all answered)"
