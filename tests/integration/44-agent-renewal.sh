#!/usr/bin/env bash
# Certificate renewal: with short lifetimes configured on the server (identity_cert_lifetime,
# host_cert_lifetime), the agent rolls the identity and the host certificate before half their
# lifetime has passed, without waiting for its long poll to time out, and keeps serving: a first
# (uncached) token after the original identity certificate has expired, and a restarted agent that
# authenticates with its renewed host certificate only. App Service flavour on 127.0.0.1 (no root
# needed). No fixed sleeps: every wait polls a condition with a deadline.
source "${BADGE_SRC:?}/tests/lib.sh"
command -v jq >/dev/null || bt_fail "jq is required"

LIFE=12 # seconds: renewal due after ~6
work=$(bt_tmpdir)
S="$work/server" A="$work/agent"
bt_start_server "$S" --identity-cert-lifetime ${LIFE}s --host-cert-lifetime ${LIFE}s
CA="$BADGE_CA_FILE"
TENANT=$(jq -r .tenantId "$S/admin.json")
SUB=$(jq -r .subscriptionId "$S/admin.json")
TOK=$(curl -sSf --cacert "$CA" --data-urlencode "client_id=$(jq -r .clientId "$S/admin.json")" \
	--data-urlencode "client_secret=$(jq -r .clientSecret "$S/admin.json")" \
	--data-urlencode "scope=${BADGE_MANAGEMENT_RESOURCE}.default" -d grant_type=client_credentials \
	"$BADGE_URL/$TENANT/oauth2/v2.0/token" | jq -r .access_token)
[[ -n "$TOK" && "$TOK" != null ]] || bt_fail "no admin token"
mgmt() {
	local args=(-sS --cacert "$CA" -X "$1" -H "Authorization: Bearer $TOK" -H "Content-Type: application/json" -w '\n%{http_code}')
	[[ $# -ge 3 ]] && args+=(-d "$3")
	local out code
	out=$(curl "${args[@]}" "$BADGE_URL$2")
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	[[ $code == 2* ]] || bt_fail "$1 $2 answered $code: $out"
	printf '%s' "$out"
}
AV="api-version=2023-03-01"
mgmt PUT "/subscriptions/$SUB/providers/Badge.Compute/hosts/h1?$AV" '{"location":"local","properties":{}}' >/dev/null
JOIN=$(mgmt POST "/subscriptions/$SUB/providers/Badge.Compute/hosts/h1/joinToken?$AV" | jq -r .joinToken)

start_agent() {
	# a long poll of 60 s: renewals every ~6 s can only come from the agent's own schedule
	"$BADGE_BIN" agent --data-dir "$A" --server "$BADGE_URL" --ca-file "$CA" --isolation appservice \
		--sync-timeout 60 "$@" >>"$A.log" 2>&1 </dev/null &
	APID=$!
	bt_cleanup bt_stop "$APID"
}
bt_log "$A.log"
start_agent --join-token "$JOIN"

mgmt PUT "/subscriptions/$SUB/resourcegroups/rg44?api-version=2021-04-01" '{"location":"local"}' >/dev/null
VM="/subscriptions/$SUB/resourceGroups/rg44/providers/Microsoft.Compute/virtualMachines"
vm_put() {
	mgmt PUT "$VM/$1?$AV" '{"location":"local","identity":{"type":"SystemAssigned"},"properties":{"hostId":"h1"}}' |
		jq -r .identity.principalId
}
OID=$(vm_put vm1)

status() { "$BADGE_BIN" agent status --data-dir "$A" 2>/dev/null; }
ident() { status | jq -r --arg n "$1" ".instances[] | select(.name == \$n) | .identities[0].$2 // empty"; }
has_cred() { [[ $(ident "$1" credential) == true ]]; }
bt_wait_for has_cred vm1

token() { # INSTANCE RESOURCE: the App Service flavour's answer, from inside the instance
	"$BADGE_BIN" vm exec --data-dir "$A" "$1" -- bash -c \
		'curl -sS -H "X-IDENTITY-HEADER: $IDENTITY_HEADER" "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=$1"' _ "$2"
}
b64pad() { local s; s=$(cut -d. -f2 <<<"$1" | tr '_-' '/+'); while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; }
oid_of() { b64pad "$(jq -r .access_token <<<"$1")" | jq -r .oid; }

body=$(token vm1 "$BADGE_MANAGEMENT_RESOURCE")
bt_assert_eq "$(oid_of "$body")" "$OID" "first token"

T1=$(ident vm1 thumbprint)
N1=$(ident vm1 notAfter)
R1=$(ident vm1 renewAt)
H1=$(status | jq -r .hostNotAfter)
HR1=$(status | jq -r .hostRenewAt)
# the renewal point is half-way through the lifetime the server gave, not through the CA's backdating
((R1 < N1 && N1 - R1 <= LIFE / 2 + 1)) || bt_fail "identity renewal point $R1 for notAfter $N1"
((HR1 < H1 && H1 - HR1 <= LIFE / 2 + 1)) || bt_fail "host renewal point $HR1 for notAfter $H1"

# 1. both certificates roll before the old ones expire (and before half-life plus a margin)
renewed() { [[ $(ident vm1 thumbprint) != "$T1" && $(status | jq -r .hostNotAfter) != "$H1" ]]; }
bt_wait_for renewed
now=$(date +%s)
((now < N1)) || bt_fail "identity certificate renewed only at $now, after its expiry $N1"
((now < H1)) || bt_fail "host certificate renewed only at $now, after its expiry $H1"
N2=$(ident vm1 notAfter)
((N2 > N1)) || bt_fail "the renewed identity certificate does not outlive the old one ($N2 <= $N1)"
[[ $(stat -c %a "$A/identities/$OID.pem") == 600 && $(stat -c %a "$A/host.key") == 600 ]] || bt_fail "modes after renewal"

# 2. once the first certificate has expired, a first (uncached) token still comes, signed by the new key
expired() { (($(date +%s) > N1 + 1)); }
bt_wait_for expired
body=$(token vm1 "$BADGE_VAULT_RESOURCE")
bt_assert_eq "$(oid_of "$body")" "$OID" "uncached token after the first certificate expired"

# 3. it keeps rolling (a second renewal of each)
T2=$(ident vm1 thumbprint)
H2=$(status | jq -r .hostNotAfter)
renewed2() { [[ $(ident vm1 thumbprint) != "$T2" && $(status | jq -r .hostNotAfter) != "$H2" ]]; }
bt_wait_for renewed2

# 4. a restarted agent gets its host token with the renewed host certificate only (the enrolment
#    certificate expired long ago) and gets certificates for a new instance
host_expired() { (($(date +%s) > H1 + 1)); }
bt_wait_for host_expired
bt_stop "$APID"
start_agent
OID2=$(vm_put vm2)
bt_wait_for has_cred vm2
body=$(token vm2 "$BADGE_MANAGEMENT_RESOURCE")
bt_assert_eq "$(oid_of "$body")" "$OID2" "token after restart"
echo "PASS 44-agent-renewal"
