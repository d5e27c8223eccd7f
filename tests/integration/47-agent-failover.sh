#!/usr/bin/env bash
# An agent given two server replicas (--server U1 --server U2) fails over (root: network
# namespaces; PostgreSQL only, as pg/integration/47-agent-failover: replicas share a database).
# Inside a namespace T of its own: two `badge server` replicas on one PostgreSQL database (the
# second joins the first with --join-from), an agent preferring the first, with its operations
# listener (--ops-listen). An instance gets tokens through the first; after `kill -9` of the
# first, a token for a resource not cached yet still comes (through the second), and a new
# instance is synced and given its certificate through the second. /healthz, /readyz and
# /metrics of the agent say so along the way (server in use, tokens served, cache hits, 429s).
source "${BADGE_SRC:?}/tests/lib.sh"
source "$BADGE_SRC/tests/topology.sh"
bt_topo_begin 47
bt_pg_require
# two replicas on one database; behind a load balancer they would share the public port
db=$(bt_pg_newdb)
bt_topo_replicas "$db" # mgmt talks to the second replica from here on

# the agent prefers the first replica
JOIN=$(bt_topo_host h1)
BADGE_URL=$U1 bt_topo_agent "$A" 10.247.0.0 --join-token "$JOIN" --server "$U2" --ops-listen 127.0.0.1:0
bt_topo_instances rg47
OID1=$(vm_put vm1)
[[ $OID1 =~ ^[0-9a-f-]{36}$ ]] || bt_fail "vm1 without a principal"

bt_topo_imds # token VM RESOURCE fails on a 429: the caller retries
bt_wait_for ready vm1
bt_assert_eq "$(token vm1 "$BADGE_MANAGEMENT_RESOURCE")" "$OID1" "vm1's token through the first replica"
bt_assert_eq "$(token vm1 "$BADGE_MANAGEMENT_RESOURCE")" "$OID1" "vm1's token again (cached)"
bt_assert_eq "$(status | jq -r .server)" "$U1" "server in use before the failure"

# the operations listener
OPS=$(status | jq -r .opsEndpoint)
[[ $OPS =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || bt_fail "no operations endpoint in the status: $OPS"
ops() { inT curl -sS -o "$work/ops.body" -w '%{http_code}' "$OPS$1"; }
bt_assert_eq "$(ops /healthz)" 200 "/healthz"
readyz() { [[ $(ops /readyz) == 200 ]]; }
bt_wait_for readyz
jq -e --arg u "$U1" '.status == "ready" and .keys == "loaded" and .server == $u and .identities == 1' "$work/ops.body" >/dev/null ||
	bt_fail "/readyz: $(cat "$work/ops.body")"
metric() { # NAME: its value in /metrics, 0 when absent
	[[ $(ops /metrics) == 200 ]] || bt_fail "/metrics answered $(cat "$work/ops.body")"
	awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' "$work/ops.body"
}
(($(metric badge_agent_imds_tokens_served_total) >= 2)) || bt_fail "tokens served not counted"
(($(metric badge_agent_token_cache_hits_total) >= 1)) || bt_fail "cache hit not counted"
(($(metric badge_agent_token_cache_misses_total) >= 1)) || bt_fail "cache miss not counted"
(($(metric badge_agent_upstream_token_requests_total) >= 1)) || bt_fail "upstream token requests not counted"
(($(metric "badge_agent_server_active{url=\"$U1\"}") == 1)) || bt_fail "first replica not shown active"
grep -q '^badge_agent_sync_lag_seconds [0-9]' "$work/ops.body" || bt_fail "no sync lag gauge"

# 429s answered are counted (20 requests a second per instance by default)
in_vm vm1 bash -c 'u=$1; args=(); for i in $(seq 60); do args+=(-o /dev/null "$u"); done; curl -s -H Metadata:true "${args[@]}"' \
	_ "$IMDS&resource=$BADGE_MANAGEMENT_RESOURCE"
(($(metric badge_agent_imds_throttled_total) >= 1)) || bt_fail "429s not counted"

# kill -9 the first replica: an uncached token still comes, through the second
kill -9 "$SPID1"
wait "$SPID1" 2>/dev/null || true
vault_token() { [[ $(token vm1 "$BADGE_VAULT_RESOURCE") == "$OID1" ]]; }
bt_wait_for vault_token # a 429 left by the burst above is waited out
bt_assert_eq "$(status | jq -r .server)" "$U2" "server in use after the failure"
(($(metric "badge_agent_server_active{url=\"$U2\"}") == 1)) || bt_fail "second replica not shown active"

# sync and certificates go through the second too: a new instance gets its identity
OID2=$(vm_put vm2)
bt_wait_for ready vm2
bt_assert_eq "$(token vm2 "$BADGE_VAULT_RESOURCE")" "$OID2" "vm2's token through the second replica"
bt_wait_for readyz
jq -e --arg u "$U2" '.status == "ready" and .server == $u and .identities == 2' "$work/ops.body" >/dev/null ||
	bt_fail "/readyz after failover: $(cat "$work/ops.body")"
echo "PASS 47-agent-failover"
