#!/usr/bin/env bash
# The host agent with network-namespace isolation (root). The whole topology lives inside a
# namespace this test creates (T): the server, the agent, and the instances' namespaces the agent
# makes (nested from T through veth links). Checks: instance A gets A's token, B cannot get A's,
# T itself reaches neither endpoint, the header/method/duplicate rules, 429 with Retry-After, the
# compute document, deleting an instance stops its endpoint and its identity's tokens, and the
# agent survives kill -9 and a restart without re-enrolling.
source "${BADGE_SRC:?}/tests/lib.sh"

source "$BADGE_SRC/tests/topology.sh"
bt_topo_begin 41

bt_topo_server

JOIN=$(bt_topo_host h1)
start_agent() { bt_topo_agent "$A" 10.241.0.0 "$@"; }
start_agent --join-token "$JOIN"

mgmt PUT "/subscriptions/$SUB/resourcegroups/rg41?api-version=2021-04-01" '{"location":"local"}' >/dev/null
VM="/subscriptions/$SUB/resourceGroups/rg41/providers/Microsoft.Compute/virtualMachines"
vm_put() {
	mgmt PUT "$VM/$1?$AV" "{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned\"},\"properties\":{\"hostId\":\"h1\"},\"tags\":{\"role\":\"$1\"}}"
}
OID_A=$(vm_put vmA | jq -r .identity.principalId)
OID_B=$(vm_put vmB | jq -r .identity.principalId)
[[ $OID_A =~ ^[0-9a-f-]{36}$ && $OID_B =~ ^[0-9a-f-]{36}$ ]] || bt_fail "instances without principals"

bt_topo_status
bt_wait_for ready vmA vmB
# run under `ip netns exec` (a slave mount namespace), the agent says its namespace names are
# its own and will not survive it
warned() { grep -q "does not pass its mounts to the host" "$A.log"; }
bt_wait_for warned

IMDS="http://169.254.169.254/metadata/identity/oauth2/token"
MRES="$BADGE_MANAGEMENT_RESOURCE"
in_vm() { local n=$1; shift; "$BADGE_BIN" vm exec --data-dir "$A" "$n" -- "$@"; }
# claim TOKEN NAME: a claim of a JWT's payload
b64pad() { local s; s=$(cut -d. -f2 <<<"$1" | tr '_-' '/+'); while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; }
claim() { b64pad "$1" | jq -r ".$2"; }

# 1. A gets A's token, with IMDS's body shape
body=$(in_vm vmA curl -sS -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES")
jq -e '[.access_token,.client_id,.expires_in,.expires_on,.ext_expires_in,.not_before,.resource,.token_type] | all(type == "string")' <<<"$body" >/dev/null ||
	bt_fail "token body not all strings: $body"
bt_assert_eq "$(jq -r .resource <<<"$body")" "$MRES" "resource echoed"
bt_assert_eq "$(jq -r .token_type <<<"$body")" "Bearer" "token_type"
bt_assert_eq "$(claim "$(jq -r .access_token <<<"$body")" oid)" "$OID_A" "A's token is A's"
# ... also percent-encoded keys and values, and the tolerant path
body=$(in_vm vmA curl -sS -H Metadata:true "http://169.254.169.254//metadata/identity/oauth2/token/?api%2Dversion=2018-02-01&resource=$(jq -rn --arg r "$MRES" '$r|@uri')")
bt_assert_eq "$(claim "$(jq -r .access_token <<<"$body")" oid)" "$OID_A" "encoded request"
# ... and B gets B's
body=$(in_vm vmB curl -sS -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES")
bt_assert_eq "$(claim "$(jq -r .access_token <<<"$body")" oid)" "$OID_B" "B's token is B's"

# 2. B cannot get A's, by object id or client id: 400, never 404
CID_A=$(in_vm vmA curl -sS -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES" | jq -r .client_id)
code=$(in_vm vmB curl -s -o /dev/null -w '%{http_code}' -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES&object_id=$OID_A")
bt_assert_eq "$code" 400 "B asking for A by object id"
line=$(in_vm vmB curl -s -i -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES&client_id=$CID_A" | head -1 | tr -d '\r')
[[ $line == "HTTP/1.1 400 Bad Request" ]] || bt_fail "status line for an unknown identity: $line"

# 3. nothing in T reaches either endpoint (169.254.169.254 exists only inside the instances)
if inT curl -s --max-time 2 -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES" >/dev/null 2>&1; then
	bt_fail "the test namespace reached a metadata endpoint"
fi

# 4. header, method and parameter rules
probe=$(in_vm vmA curl -s -w '\n%{http_code}' "$IMDS")
bt_assert_eq "${probe##*$'\n'}" 400 "probe without Metadata"
jq -e '.error_description == "Required metadata header not specified"' <<<"${probe%$'\n'*}" >/dev/null || bt_fail "probe body: $probe"
code=$(in_vm vmA curl -s -o /dev/null -w '%{http_code}' -X POST -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES")
bt_assert_eq "$code" 405 "POST"
code=$(in_vm vmA curl -s -o /dev/null -w '%{http_code}' -H Metadata:true -H 'X-Forwarded-For: 10.0.0.1' "$IMDS?api-version=2018-02-01&resource=$MRES")
bt_assert_eq "$code" 400 "X-Forwarded-For"
code=$(in_vm vmA curl -s -o /dev/null -w '%{http_code}' -H Metadata:true -H 'Forwarded: for=10.0.0.1' "$IMDS?api-version=2018-02-01&resource=$MRES")
bt_assert_eq "$code" 400 "Forwarded"
code=$(in_vm vmA curl -s -o /dev/null -w '%{http_code}' -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES&resource=$MRES")
bt_assert_eq "$code" 400 "duplicate parameter"
code=$(in_vm vmA curl -s -o /dev/null -w '%{http_code}' -H Metadata:true "$IMDS?resource=$MRES")
bt_assert_eq "$code" 400 "missing api-version"

# 5. the compute document and the versions
doc=$(in_vm vmA curl -sS -H Metadata:true "http://169.254.169.254/metadata/instance?api-version=2021-02-01")
bt_assert_eq "$(jq -r .compute.name <<<"$doc")" vmA "compute.name"
bt_assert_eq "$(jq -r .compute.resourceGroupName <<<"$doc")" rg41 "compute.resourceGroupName"
bt_assert_eq "$(jq -r .compute.subscriptionId <<<"$doc")" "$SUB" "compute.subscriptionId"
bt_assert_eq "$(jq -r .compute.tags <<<"$doc")" "role:vmA" "compute.tags"
in_vm vmA curl -sS -H Metadata:true "http://169.254.169.254/metadata/versions" | jq -e '.apiVersions | length > 5' >/dev/null ||
	bt_fail "versions"

# 6. the service names resolve inside the instance, to an address where the server answers
in_vm vmA curl -sSf --cacert "$CA" -o /dev/null "https://login.badge.internal:$BADGE_PORT/$TENANT/v2.0/.well-known/openid-configuration" ||
	bt_fail "login.badge.internal not reachable from inside the instance"

# 7. rate limit: 60 requests on one connection within a second or two meet 429 with Retry-After
codes=$(in_vm vmB bash -c 'u=$1; args=(); for i in $(seq 60); do args+=(-o /dev/null "$u"); done; curl -s -H Metadata:true -w "%{http_code}\n" "${args[@]}"' _ "$IMDS?api-version=2018-02-01&resource=$MRES")
grep -q '^429$' <<<"$codes" || bt_fail "no 429 among 60 quick requests: $(sort <<<"$codes" | uniq -c | tr '\n' ' ')"
grep -q '^200$' <<<"$codes" || bt_fail "no 200 among 60 quick requests"
hdr=$(in_vm vmB bash -c 'u=$1; for i in $(seq 40); do curl -s -D - -o /dev/null -H Metadata:true "$u" | tr -d "\r" | grep -i "^retry-after:" && break; done' _ "$IMDS?api-version=2018-02-01&resource=$MRES" || true)
[[ -n "$hdr" ]] || bt_fail "429 without Retry-After"

# 8. kill -9 and restart without the join token: no re-enrolment, serving again
HOST_ID=$(jq -r .hostId "$A/host.json")
kill -9 "$APID"
wait "$APID" 2>/dev/null || true
start_agent
bt_wait_for ready vmA vmB
bt_assert_eq "$(jq -r .hostId "$A/host.json")" "$HOST_ID" "host identity kept"
grep -c 'enrolled as host' "$A.log" | grep -qx 1 || bt_fail "the agent enrolled twice"
# the readiness polls above count against B's rate limit: honour a 429 as a client would
token_b() {
	body=$(in_vm vmB curl -sS -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$BADGE_VAULT_RESOURCE")
	[[ $(jq -r '.error // empty' <<<"$body") != too_many_requests ]]
}
bt_wait_for token_b
bt_assert_eq "$(claim "$(jq -r .access_token <<<"$body")" oid)" "$OID_B" "B after restart"
for f in "$A"/host.key "$A"/identities/*.key; do
	bt_assert_eq "$(stat -c %a "$f")" 600 "mode of $f"
done

# 9. deleting A stops A's endpoint and its identity's credential
mgmt DELETE "$VM/vmA?$AV" >/dev/null
gone() { ! status | jq -e '.instances[] | select(.name == "vmA")' >/dev/null; }
bt_wait_for gone
if in_vm vmA true 2>/dev/null; then bt_fail "vm exec into a deleted instance worked"; fi
[[ ! -e "$A/identities/$OID_A.key" ]] || bt_fail "A's key still on disk"
# A's identity can no longer get tokens with the host credential it had (the directory dropped it)
body=$(in_vm vmB curl -sS -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES&object_id=$OID_A")
bt_assert_eq "$(jq -r .error <<<"$body")" invalid_request "A's identity from B after deletion"
echo "PASS 41-agent-netns"
