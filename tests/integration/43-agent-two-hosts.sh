#!/usr/bin/env bash
# A user-assigned identity on two instances on two hosts (two agents), all inside a network
# namespace this test creates (root). Checks: the identity works on both instances; removed from
# one instance it stops there (400 from that instance's endpoint), the directory drops that host's
# credential for it (a client assertion signed with the key the removed host held is refused),
# and it keeps working on the other; deleting the identity stops it everywhere and revokes the
# other host's credential too.
source "${BADGE_SRC:?}/tests/lib.sh"

if [[ $(id -u) != 0 ]]; then
	echo "SKIP: needs root (network namespaces)"
	exit 0
fi
command -v jq >/dev/null || bt_fail "jq is required"
command -v openssl >/dev/null || bt_fail "openssl is required"

T="t43-$$"
P1="t43$$a-" P2="t43$$b-"
ip netns add "$T"
bt_cleanup ip netns del "$T"
bt_cleanup bash -c "rm -rf /etc/netns/${P1}* /etc/netns/${P2}* /etc/netns/$T; for f in /run/netns/${P1}* /run/netns/${P2}*; do [ -e \"\$f\" ] && { umount \"\$f\" 2>/dev/null; rm -f \"\$f\"; }; done; true"
ip -n "$T" link set lo up
inT() { ip netns exec "$T" "$@"; }

work=$(bt_tmpdir)
S="$work/server" A1="$work/agent1" A2="$work/agent2"
mkdir -p "$S"
ip netns exec "$T" "$BADGE_BIN" server --data-dir "$S" --listen 0.0.0.0:0 >>"$S.log" 2>&1 </dev/null &
SPID=$!
bt_cleanup bt_stop "$SPID"
bt_log "$S.log"
bt_wait_for test -f "$S/env"
# shellcheck disable=SC1091
source "$S/env"
CA="$BADGE_CA_FILE"
TENANT=$(jq -r .tenantId "$S/admin.json")
SUB=$(jq -r .subscriptionId "$S/admin.json")
TOK=$(inT curl -sSf --cacert "$CA" --data-urlencode "client_id=$(jq -r .clientId "$S/admin.json")" \
	--data-urlencode "client_secret=$(jq -r .clientSecret "$S/admin.json")" \
	--data-urlencode "scope=${BADGE_MANAGEMENT_RESOURCE}.default" -d grant_type=client_credentials \
	"$BADGE_URL/$TENANT/oauth2/v2.0/token" | jq -r .access_token)
[[ -n "$TOK" && "$TOK" != null ]] || bt_fail "no admin token"
mgmt() {
	local args=(-sS --cacert "$CA" -X "$1" -H "Authorization: Bearer $TOK" -H "Content-Type: application/json" -w '\n%{http_code}')
	[[ $# -ge 3 ]] && args+=(-d "$3")
	local out code
	out=$(inT curl "${args[@]}" "$BADGE_URL$2")
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	[[ $code == 2* ]] || bt_fail "$1 $2 answered $code: $out"
	printf '%s' "$out"
}
AV="api-version=2023-03-01"

start_agent() { # DIR HOST PREFIX SUBNET
	mgmt PUT "/subscriptions/$SUB/providers/Badge.Compute/hosts/$2?$AV" '{"location":"local","properties":{}}' >/dev/null
	local join
	join=$(mgmt POST "/subscriptions/$SUB/providers/Badge.Compute/hosts/$2/joinToken?$AV" | jq -r .joinToken)
	ip netns exec "$T" "$BADGE_BIN" agent --data-dir "$1" --server "$BADGE_URL" --ca-file "$CA" --isolation netns \
		--netns-prefix "$3" --netns-subnet "$4" --sync-timeout 5 --key-type RSA --join-token "$join" >>"$1.log" 2>&1 </dev/null &
	bt_cleanup bt_stop "$!"
	bt_log "$1.log"
}
start_agent "$A1" h1 "$P1" 10.242.0.0
start_agent "$A2" h2 "$P2" 10.243.0.0

RG="/subscriptions/$SUB/resourceGroups/rg43"
mgmt PUT "/subscriptions/$SUB/resourcegroups/rg43?api-version=2021-04-01" '{"location":"local"}' >/dev/null
UAI_ID="$RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u43"
UAI=$(mgmt PUT "$UAI_ID?api-version=2023-01-31" '{"location":"local"}')
U_OID=$(jq -r .properties.principalId <<<"$UAI")
U_CID=$(jq -r .properties.clientId <<<"$UAI")
[[ $U_OID =~ ^[0-9a-f-]{36}$ && $U_CID =~ ^[0-9a-f-]{36}$ ]] || bt_fail "identity without principal: $UAI"
VM="$RG/providers/Microsoft.Compute/virtualMachines"
vm_put() { # NAME HOST IDENTITY-JSON
	mgmt PUT "$VM/$1?$AV" "{\"location\":\"local\",\"identity\":$3,\"properties\":{\"hostId\":\"$2\"}}"
}
WITH_UAI="{\"type\":\"SystemAssigned, UserAssigned\",\"userAssignedIdentities\":{\"$UAI_ID\":{}}}"
S1=$(vm_put vm1 h1 "$WITH_UAI" | jq -r .identity.principalId)
S2=$(vm_put vm2 h2 "$WITH_UAI" | jq -r .identity.principalId)

status() { "$BADGE_BIN" agent status --data-dir "$1" 2>/dev/null; }
# has DIR INSTANCE OID: the agent lists OID on INSTANCE with a credential
has() {
	status "$1" | jq -e --arg n "$2" --arg o "$3" \
		'.instances[] | select(.name == $n) | .identities[] | select(.objectId == $o) | .credential' >/dev/null
}
lacks() { ! status "$1" | jq -e --arg n "$2" --arg o "$3" '.instances[] | select(.name == $n) | .identities[] | select(.objectId == $o)' >/dev/null; }
bt_wait_for has "$A1" vm1 "$U_OID"
bt_wait_for has "$A2" vm2 "$U_OID"

IMDS="http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
# imds DIR INSTANCE QUERY: "<status> <body>" from inside the instance
imds() {
	"$BADGE_BIN" vm exec --data-dir "$1" "$2" -- curl -s -w '\n%{http_code}' -H Metadata:true "$IMDS&$3"
}
b64pad() { local s; s=$(cut -d. -f2 <<<"$1" | tr '_-' '/+'); while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; }
# token_oid DIR INSTANCE QUERY: the oid of the token the instance gets, or fails with the status
token_oid() {
	local out code
	out=$(imds "$@")
	code=${out##*$'\n'}
	[[ $code == 200 ]] || { echo "status $code: ${out%$'\n'*}"; return 1; }
	b64pad "$(jq -r .access_token <<<"${out%$'\n'*}")" | jq -r .oid
}
MRES="$BADGE_MANAGEMENT_RESOURCE"
VRES="$BADGE_VAULT_RESOURCE"
enc() { jq -rn --arg v "$1" '$v|@uri'; }

# 1. the identity works on both hosts, by client id, object id and resource id; the system
#    identities stay apart
bt_assert_eq "$(token_oid "$A1" vm1 "resource=$MRES&client_id=$U_CID")" "$U_OID" "vm1 (h1) by client id"
bt_assert_eq "$(token_oid "$A2" vm2 "resource=$MRES&object_id=$U_OID")" "$U_OID" "vm2 (h2) by object id"
bt_assert_eq "$(token_oid "$A2" vm2 "resource=$VRES&msi_res_id=$(enc "$UAI_ID")")" "$U_OID" "vm2 (h2) by resource id"
bt_assert_eq "$(token_oid "$A1" vm1 "resource=$MRES")" "$S1" "vm1's default is its system identity"
bt_assert_eq "$(token_oid "$A2" vm2 "resource=$MRES")" "$S2" "vm2's default is its system identity"

# A host's credential for the identity, taken from its data dir: a client assertion signed with
# it (the agent's own way to get tokens) shows whether the directory still accepts that credential.
cp "$A1/identities/$U_OID.key" "$work/h1.key"
cp "$A1/identities/$U_OID.pem" "$work/h1.pem"
cp "$A2/identities/$U_OID.key" "$work/h2.key"
cp "$A2/identities/$U_OID.pem" "$work/h2.pem"
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
TOKEN_URL="$BADGE_URL/$TENANT/oauth2/token"
# direct KEY CERT: the status of a v1 token request with an assertion signed by KEY
direct() {
	local now x5t hdr pay sig
	now=$(date +%s)
	x5t=$(openssl x509 -in "$2" -outform DER | openssl dgst -sha256 -binary | b64url)
	hdr=$(jq -cn --arg x "$x5t" '{alg:"RS256",typ:"JWT","x5t#S256":$x}' | b64url)
	pay=$(jq -cn --arg aud "$TOKEN_URL" --arg c "$U_CID" --arg j "$(cat /proc/sys/kernel/random/uuid)" --argjson n "$now" \
		'{aud:$aud,iss:$c,sub:$c,jti:$j,iat:$n,nbf:$n,exp:($n+300)}' | b64url)
	sig=$(printf '%s.%s' "$hdr" "$pay" | openssl dgst -sha256 -sign "$1" -binary | b64url)
	inT curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -d grant_type=client_credentials \
		--data-urlencode "client_id=$U_CID" --data-urlencode "resource=$MRES" \
		--data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
		--data-urlencode "client_assertion=$hdr.$pay.$sig" "$TOKEN_URL"
}
bt_assert_eq "$(direct "$work/h1.key" "$work/h1.pem")" 200 "h1's credential before removal"
bt_assert_eq "$(direct "$work/h2.key" "$work/h2.pem")" 200 "h2's credential before removal"

# 2. removed from vm1: it stops on vm1 (400), h1's credential is revoked, vm2 keeps it
vm_put vm1 h1 '{"type":"SystemAssigned"}' >/dev/null
bt_wait_for lacks "$A1" vm1 "$U_OID"
bt_wait_for test ! -e "$A1/identities/$U_OID.key"
out=$(imds "$A1" vm1 "resource=$MRES&client_id=$U_CID")
bt_assert_eq "${out##*$'\n'}" 400 "vm1 asking for the removed identity"
bt_assert_eq "$(jq -r .error <<<"${out%$'\n'*}")" invalid_request "error of the removed identity"
out=$(imds "$A1" vm1 "resource=$VRES&msi_res_id=$(enc "$UAI_ID")")
bt_assert_eq "${out##*$'\n'}" 400 "vm1 asking for the removed identity by resource id"
bt_assert_eq "$(direct "$work/h1.key" "$work/h1.pem")" 401 "h1's credential after removal"
bt_assert_eq "$(direct "$work/h2.key" "$work/h2.pem")" 200 "h2's credential after removal from vm1"
bt_assert_eq "$(token_oid "$A1" vm1 "resource=$VRES")" "$S1" "vm1's system identity unaffected"
# an uncached token on vm2 (a form of the resource it has not asked for: the cache is per exact
# resource string) comes from h2's credential
got=$(token_oid "$A2" vm2 "resource=$(enc "${MRES%/}")&client_id=$U_CID")
bt_assert_eq "$got" "$U_OID" "vm2 still gets the identity's token"

# 3. deleting the identity stops it everywhere and revokes h2's credential
mgmt DELETE "$UAI_ID?api-version=2023-01-31" >/dev/null
bt_wait_for lacks "$A2" vm2 "$U_OID"
bt_wait_for test ! -e "$A2/identities/$U_OID.key"
out=$(imds "$A2" vm2 "resource=$MRES&client_id=$U_CID")
bt_assert_eq "${out##*$'\n'}" 400 "vm2 asking for the deleted identity"
# the application is gone with its credentials: Entra answers 400 unauthorized_client here
code=$(direct "$work/h2.key" "$work/h2.pem")
[[ $code == 400 || $code == 401 ]] || bt_fail "h2's credential after deletion: $code"
bt_assert_eq "$(token_oid "$A2" vm2 "resource=$MRES")" "$S2" "vm2's system identity unaffected"
echo "PASS 43-agent-two-hosts"
