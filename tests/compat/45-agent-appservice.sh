#!/usr/bin/env bash
# The App Service flavour (no namespaces, no root needed): the agent serves each instance on a
# loopback port guarded by the instance's secret; `badge vm exec` hands IDENTITY_ENDPOINT and
# IDENTITY_HEADER to the command. Real clients: @azure/identity ManagedIdentityCredential (system
# and user-assigned by client id) and DefaultAzureCredential (no probe on this flavour), Python
# azure.identity. Also: a wrong or missing header is refused, the secret rotates.
source "${BADGE_SRC:?}/tests/lib.sh"
command -v jq >/dev/null || bt_fail "jq is required"
NODE_MODULES="$BADGE_SRC/tests/compat/node_modules"
[[ -d "$NODE_MODULES/@azure/identity" ]] || bt_fail "tests/compat/node_modules lacks @azure/identity"

work=$(bt_tmpdir)
S="$work/server" A="$work/agent"
bt_start_server "$S"
CA="$BADGE_CA_FILE"
TENANT=$(jq -r .tenantId "$S/admin.json")
SUB=$(jq -r .subscriptionId "$S/admin.json")
TOK=$(curl -sSf --cacert "$CA" --data-urlencode "client_id=$(jq -r .clientId "$S/admin.json")" \
	--data-urlencode "client_secret=$(jq -r .clientSecret "$S/admin.json")" \
	--data-urlencode "scope=${BADGE_MANAGEMENT_RESOURCE}.default" -d grant_type=client_credentials \
	"$BADGE_URL/$TENANT/oauth2/v2.0/token" | jq -r .access_token)
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
mgmt PUT "/subscriptions/$SUB/providers/Badge.Compute/hosts/h45?$AV" '{"location":"local","properties":{}}' >/dev/null
JOIN=$(mgmt POST "/subscriptions/$SUB/providers/Badge.Compute/hosts/h45/joinToken?$AV" | jq -r .joinToken)
"$BADGE_BIN" agent --data-dir "$A" --server "$BADGE_URL" --ca-file "$CA" --join-token "$JOIN" \
	--isolation appservice --sync-timeout 5 >>"$A.log" 2>&1 </dev/null &
bt_cleanup bt_stop $!
_bt_logs+=("$A.log")

mgmt PUT "/subscriptions/$SUB/resourcegroups/rg45?api-version=2021-04-01" '{"location":"local"}' >/dev/null
UAI=$(mgmt PUT "/subscriptions/$SUB/resourceGroups/rg45/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai45?api-version=2023-01-31" '{"location":"local"}')
UAI_ID=$(jq -r .id <<<"$UAI") UAI_CID=$(jq -r .properties.clientId <<<"$UAI") UAI_OID=$(jq -r .properties.principalId <<<"$UAI")
VMJSON=$(mgmt PUT "/subscriptions/$SUB/resourceGroups/rg45/providers/Microsoft.Compute/virtualMachines/app45?$AV" \
	"{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned, UserAssigned\",\"userAssignedIdentities\":{\"$UAI_ID\":{}}},\"properties\":{\"hostId\":\"h45\"}}")
SYS_OID=$(jq -r .identity.principalId <<<"$VMJSON")
ready() {
	"$BADGE_BIN" agent status --data-dir "$A" 2>/dev/null |
		jq -e '.instances[] | select(.name == "app45") | .identities | length > 1 and all(.credential)' >/dev/null
}
bt_wait_for ready

in_app() { "$BADGE_BIN" vm exec --data-dir "$A" app45 -- env -u AZURE_CLIENT_ID -u MSI_ENDPOINT "$@"; }
b64pad() { local s; s=$(cut -d. -f2 <<<"$1" | tr '_-' '/+'); while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; }
claim() { b64pad "$1" | jq -r ".$2"; }

# the raw protocol: header required, the right one only
EP=$(in_app printenv IDENTITY_ENDPOINT)
[[ $EP == http://127.0.0.1:*/msi/token ]] || bt_fail "IDENTITY_ENDPOINT is $EP"
code=$(curl -s -o /dev/null -w '%{http_code}' "$EP?api-version=2019-08-01&resource=$BADGE_VAULT_RESOURCE")
bt_assert_eq "$code" 400 "no X-IDENTITY-HEADER"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-IDENTITY-HEADER: nope' "$EP?api-version=2019-08-01&resource=$BADGE_VAULT_RESOURCE")
bt_assert_eq "$code" 401 "wrong X-IDENTITY-HEADER"
body=$(in_app bash -c 'curl -sS -H "X-IDENTITY-HEADER: $IDENTITY_HEADER" "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=$1&principal_id=$2"' _ "$BADGE_VAULT_RESOURCE" "$UAI_OID")
bt_assert_eq "$(claim "$(jq -r .access_token <<<"$body")" oid)" "$UAI_OID" "principal_id selects the user-assigned identity"

js() {
	in_app env NODE_PATH="$NODE_MODULES" node -e '
const id = require("@azure/identity");
(async () => {
  const cred = eval(process.argv[1]);
  const t = await cred.getToken(process.argv[2] + "/.default");
  console.log(JSON.parse(Buffer.from(t.token.split(".")[1], "base64url")).oid);
})().catch(e => { console.error(String(e).slice(0, 400)); process.exit(1); });' "$1" "$BADGE_VAULT_RESOURCE"
}
bt_assert_eq "$(js 'new id.ManagedIdentityCredential()')" "$SYS_OID" "JS system-assigned (App Service)"
bt_assert_eq "$(js "new id.ManagedIdentityCredential({clientId: \"$UAI_CID\"})")" "$UAI_OID" "JS user-assigned (App Service)"
bt_assert_eq "$(js "new id.ManagedIdentityCredential({resourceId: \"$UAI_ID\"})")" "$UAI_OID" "JS by resource id (App Service)"
bt_assert_eq "$(js 'new id.DefaultAzureCredential()')" "$SYS_OID" "JS DefaultAzureCredential (App Service)"
py=$(in_app /usr/bin/python3 -c '
import sys, json, base64
from azure.identity import ManagedIdentityCredential
t = ManagedIdentityCredential().get_token(sys.argv[1] + "/.default")
p = t.token.split(".")[1]; p += "=" * (-len(p) % 4)
print(json.loads(base64.urlsafe_b64decode(p))["oid"])' "$BADGE_VAULT_RESOURCE")
bt_assert_eq "$py" "$SYS_OID" "Python system-assigned (App Service)"

# rotation: the old secret stops working, the new one (from vm exec) works
OLD=$(in_app printenv IDENTITY_HEADER)
"$BADGE_BIN" agent rotate-secret --data-dir "$A" app45
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-IDENTITY-HEADER: $OLD" "$EP?api-version=2019-08-01&resource=$BADGE_VAULT_RESOURCE")
bt_assert_eq "$code" 401 "old secret after rotation"
bt_assert_eq "$(js 'new id.ManagedIdentityCredential()')" "$SYS_OID" "new secret after rotation"
echo "PASS 45-agent-appservice"
