#!/usr/bin/env bash
# The real Key Vault clients against badge's vault, host-style (kv1.vault.badge.internal:PORT)
# inside a network namespace where the service names resolve: @azure/keyvault-secrets and
# @azure/keyvault-keys (KeyClient, CryptographyClient) through 50-vault-sdk.js, and Debian's
# azure.keyvault.secrets/keys through 50-vault-sdk.py, both with ClientSecretCredential and the
# challenge flow (Python's check includes the port). No endpoint override, no verification off.
source "$BADGE_SRC/tests/lib.sh"
source "$BADGE_SRC/tests/netns.sh"
bt_netns_enter kv1
cd "$BADGE_SRC/tests/compat"
[[ -d node_modules/@azure/keyvault-secrets ]] || bt_fail "npm packages missing: run scripts/install-deps.sh"

dir=$(bt_tmpdir)
bt_start_server "$dir/server"
export BADGE_DATA_DIR="$dir/server"
c() { curl -sS --cacert "$BADGE_CA_FILE" "$@"; }
export CLIENT_ID=$(jq -r .clientId "$dir/server/admin.json")
export CLIENT_SECRET=$(jq -r .clientSecret "$dir/server/admin.json")
mtok=$(c -d grant_type=client_credentials -d client_id="$CLIENT_ID" --data-urlencode client_secret="$CLIENT_SECRET" \
	--data-urlencode scope="$BADGE_MANAGEMENT_RESOURCE/.default" "$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" |
	jq -r .access_token)
oid=$(/usr/bin/python3 -c 'import sys,json,base64; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"=="*2))["oid"])' "$mtok")
arm() { c -o "$dir/body" -w '%{http_code}' -X PUT -H "Authorization: Bearer $mtok" -H 'Content-Type: application/json' "$@"; }
st=$(arm -d '{"location":"local"}' "$BADGE_URL/subscriptions/$BADGE_SUBSCRIPTION_ID/resourcegroups/rg1?api-version=2021-04-01")
[[ $st == 200 || $st == 201 ]] || bt_fail "resource group: $st $(cat "$dir/body")"
st=$(arm -d "{\"location\":\"local\",\"properties\":{\"tenantId\":\"$BADGE_TENANT_ID\",\"sku\":{\"family\":\"A\",\"name\":\"standard\"},
	\"accessPolicies\":[{\"tenantId\":\"$BADGE_TENANT_ID\",\"objectId\":\"$oid\",\"permissions\":{\"secrets\":[\"all\"],\"keys\":[\"all\"]}}]}}" \
	"$BADGE_URL/subscriptions/$BADGE_SUBSCRIPTION_ID/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1?api-version=2023-07-01")
[[ $st == 200 || $st == 201 ]] || bt_fail "vault: $st $(cat "$dir/body")"

export VAULT_URL="https://kv1.$BADGE_VAULT_SUFFIX:$BADGE_PORT"
timeout 300 node 50-vault-sdk.js || bt_fail "@azure/keyvault-* clients"
timeout 300 /usr/bin/python3 50-vault-sdk.py || bt_fail "azure.keyvault.* (python)"
echo "PASS"
