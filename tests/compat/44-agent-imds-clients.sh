#!/usr/bin/env bash
# Real clients inside an instance with no endpoint override at all (root, network namespaces):
# @azure/identity ManagedIdentityCredential (system-assigned; user-assigned by client id, object
# id and resource id) and DefaultAzureCredential, Python azure.identity ManagedIdentityCredential,
# and Debian's `az login --identity` (+ --username <client id>) with `az account get-access-token`
# against a registered badge cloud. Topology as in 41: everything inside a namespace we create.
source "${BADGE_SRC:?}/tests/lib.sh"

source "$BADGE_SRC/tests/topology.sh"
bt_topo_begin 44

bt_topo_server

JOIN=$(bt_topo_host h1)
start_agent() { bt_topo_agent "$A" 10.244.0.0 "$@"; }
start_agent --join-token "$JOIN"

mgmt PUT "/subscriptions/$SUB/resourcegroups/rg44?api-version=2021-04-01" '{"location":"local"}' >/dev/null
VM="/subscriptions/$SUB/resourceGroups/rg44/providers/Microsoft.Compute/virtualMachines"
vm_put() {
	mgmt PUT "$VM/$1?$AV" "{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned\"},\"properties\":{\"hostId\":\"h1\"},\"tags\":{\"role\":\"$1\"}}"
}

NODE_MODULES="$BADGE_SRC/tests/compat/node_modules"
[[ -d "$NODE_MODULES/@azure/identity" ]] || bt_fail "tests/compat/node_modules lacks @azure/identity (npm ci in tests/compat)"

# a user-assigned identity, and an instance with both kinds
UAI=$(mgmt PUT "/subscriptions/$SUB/resourceGroups/rg44/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai44?api-version=2023-01-31" '{"location":"local"}')
UAI_ID=$(jq -r .id <<<"$UAI")
UAI_CID=$(jq -r .properties.clientId <<<"$UAI")
UAI_OID=$(jq -r .properties.principalId <<<"$UAI")
VMJSON=$(mgmt PUT "$VM/vm44?$AV" "{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned, UserAssigned\",\"userAssignedIdentities\":{\"$UAI_ID\":{}}},\"properties\":{\"hostId\":\"h1\"}}")
SYS_OID=$(jq -r .identity.principalId <<<"$VMJSON")
status() { "$BADGE_BIN" agent status --data-dir "$A" 2>/dev/null; }
ready() {
	status | jq -e --arg n "$1" '.instances[] | select(.name == $n) | .identities | length > 1 and all(.credential)' >/dev/null
}
bt_wait_for ready vm44
in_vm() {
	local n=$1
	shift
	"$BADGE_BIN" vm exec --data-dir "$A" "$n" -- env -u IDENTITY_ENDPOINT -u IDENTITY_HEADER -u MSI_ENDPOINT \
		-u AZURE_POD_IDENTITY_AUTHORITY_HOST -u AZURE_CLIENT_ID "$@"
}
b64pad() { local s; s=$(cut -d. -f2 <<<"$1" | tr '_-' '/+'); while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; }
claim() { b64pad "$1" | jq -r ".$2"; }

# JS: node prints the oid of the token it got
js() { # credential-expression
	in_vm vm44 env NODE_PATH="$NODE_MODULES" node -e '
const id = require("@azure/identity");
(async () => {
  const cred = eval(process.argv[1]);
  const t = await cred.getToken(process.argv[2] + "/.default");
  const p = JSON.parse(Buffer.from(t.token.split(".")[1], "base64url"));
  console.log(p.oid);
})().catch(e => { console.error(String(e).slice(0, 400)); process.exit(1); });' "$1" "${BADGE_VAULT_RESOURCE}"
}
bt_assert_eq "$(js 'new id.ManagedIdentityCredential()')" "$SYS_OID" "JS system-assigned"
bt_assert_eq "$(js "new id.ManagedIdentityCredential({clientId: \"$UAI_CID\"})")" "$UAI_OID" "JS user-assigned by client id"
bt_assert_eq "$(js "new id.ManagedIdentityCredential({objectId: \"$UAI_OID\"})")" "$UAI_OID" "JS user-assigned by object id"
bt_assert_eq "$(js "new id.ManagedIdentityCredential({resourceId: \"$UAI_ID\"})")" "$UAI_OID" "JS user-assigned by resource id"
bt_assert_eq "$(js 'new id.DefaultAzureCredential()')" "$SYS_OID" "JS DefaultAzureCredential (probe, then IMDS)"

# Python (Debian's azure-identity)
py() {
	in_vm vm44 /usr/bin/python3 -c '
import sys, json, base64
from azure.identity import ManagedIdentityCredential
kw = {"client_id": sys.argv[2]} if sys.argv[2] else {}
t = ManagedIdentityCredential(**kw).get_token(sys.argv[1] + "/.default")
p = t.token.split(".")[1]; p += "=" * (-len(p) % 4)
print(json.loads(base64.urlsafe_b64decode(p))["oid"])' "$BADGE_VAULT_RESOURCE" "$1"
}
bt_assert_eq "$(py '')" "$SYS_OID" "Python system-assigned"
bt_assert_eq "$(py "$UAI_CID")" "$UAI_OID" "Python user-assigned by client id"

# az: a registered badge cloud in a temp config dir, login with the identity, get a token
if command -v az >/dev/null; then
	AZD=$(bt_tmpdir)
	P=":$BADGE_PORT"
	cat >"$AZD/cloud.json" <<EOF
{ "endpoints": { "resourceManager": "https://management.badge.internal$P/",
                 "management": "https://management.badge.internal/",
                 "activeDirectory": "https://login.badge.internal$P",
                 "activeDirectoryResourceId": "https://management.badge.internal/",
                 "activeDirectoryGraphResourceId": "https://graph.badge.internal/",
                 "microsoftGraphResourceId": "https://graph.badge.internal/" },
  "suffixes": { "keyvaultDns": ".vault.badge.internal" } }
EOF
	azv() { in_vm vm44 env AZURE_CONFIG_DIR="$AZD" REQUESTS_CA_BUNDLE="$CA" AZURE_CORE_COLLECT_TELEMETRY=0 az "$@"; }
	azv cloud register -n badge --cloud-config "@$AZD/cloud.json" >/dev/null
	azv cloud set -n badge >/dev/null
	# az lists subscriptions after the token: give both identities Reader on the subscription
	for oid in "$SYS_OID" "$UAI_OID"; do
		mgmt PUT "/subscriptions/$SUB/providers/Microsoft.Authorization/roleAssignments/$(cat /proc/sys/kernel/random/uuid)?api-version=2022-04-01" \
			"{\"properties\":{\"roleDefinitionId\":\"/subscriptions/$SUB/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7\",\"principalId\":\"$oid\",\"principalType\":\"ServicePrincipal\"}}" >/dev/null
	done
	azv login --identity >/dev/null || bt_fail "az login --identity"
	tok=$(azv account get-access-token --resource "$BADGE_VAULT_RESOURCE" --query accessToken -o tsv)
	bt_assert_eq "$(claim "$tok" oid)" "$SYS_OID" "az system-assigned"
	azv login --identity --username "$UAI_CID" >/dev/null || bt_fail "az login --identity --username"
	tok=$(azv account get-access-token --resource "$BADGE_VAULT_RESOURCE" --query accessToken -o tsv)
	bt_assert_eq "$(claim "$tok" oid)" "$UAI_OID" "az user-assigned"
else
	echo "note: az not installed, skipping the CLI part"
fi
echo "PASS 44-agent-imds-clients"
