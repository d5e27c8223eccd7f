#!/usr/bin/env bash
# libbadge as an application sees it, no root needed: install it into a temporary prefix
# (cmake --install), build examples/read-secret and a Key Vault driver against it with
# pkg-config, then
#   - the driver runs the secret and key operations of the npm compat test (50-vault-sdk.js)
#     through libbadge with a client-secret credential (path-style vault, api-version 7.4 and
#     2025-07-01);
#   - inside an App Service-flavoured instance (`badge vm exec`: IDENTITY_ENDPOINT +
#     IDENTITY_HEADER, nothing else), read-secret reads the secret the operator stored, with no
#     credential in its code, configuration or environment; `badge token` gets the instance's
#     token (system-assigned, and the user-assigned identity by client id, object id, resource id);
#   - the instance without an access policy is refused (403).
source "${BADGE_SRC:?}/tests/lib.sh"
command -v jq >/dev/null || bt_fail "jq is required"
command -v pkg-config >/dev/null || bt_fail "pkg-config is required"

work=$(bt_tmpdir)
prefix="$work/prefix"
cmake --install "$BADGE_BUILD" --prefix "$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; bt_fail "cmake --install"; }
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[[ -f "$prefix/include/badge/badge.h" && -f "$prefix/lib/libbadge.a" ]] || bt_fail "installed files missing"
ls "$prefix"/lib/libbadge.so* >/dev/null || bt_fail "no libbadge.so"
cp "$BADGE_SRC/examples/read-secret.c" "$BADGE_SRC/examples/Makefile" "$work/"
make -s -C "$work" >"$work/make.log" 2>&1 || { cat "$work/make.log"; bt_fail "building the example with pkg-config"; }
ldd "$work/read-secret" | grep "$prefix/.*libbadge.so" >/dev/null || bt_fail "read-secret is not linked to the installed libbadge"
# the driver, and the example linked with libbadge.a (its dependencies shared)
cc -Wall -Wextra -o "$work/kvdriver" "$BADGE_SRC/tests/integration/libbadge_kv_driver.c" \
	$(pkg-config --cflags --libs badge libcrypto jansson) -Wl,-rpath,"$prefix/lib" || bt_fail "building the driver"
cc -o "$work/read-secret-static" "$work/read-secret.c" $(pkg-config --cflags badge) "$prefix/lib/libbadge.a" \
	$(pkg-config --libs-only-other badge) $(pkg-config --libs libcurl openssl jansson) -lpthread || bt_fail "static link against libbadge.a"
nm -D "$prefix/lib/libbadge.so" --defined-only | awk '$2 == "T" {print $3}' | grep -v '^badge_' &&
	bt_fail "libbadge.so exports more than badge_*"

S="$work/server" A="$work/agent"
bt_start_server "$S"
CA="$BADGE_CA_FILE"
CLIENT_ID=$(jq -r .clientId "$S/admin.json")
CLIENT_SECRET=$(jq -r .clientSecret "$S/admin.json")
TOK=$(curl -sSf --cacert "$CA" --data-urlencode "client_id=$CLIENT_ID" --data-urlencode "client_secret=$CLIENT_SECRET" \
	--data-urlencode "scope=${BADGE_MANAGEMENT_RESOURCE}.default" -d grant_type=client_credentials \
	"$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" | jq -r .access_token)
ADMIN_OID=$(cut -d. -f2 <<<"$TOK" | tr '_-' '/+' | { read -r s; while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; } | jq -r .oid)
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
SUB=$BADGE_SUBSCRIPTION_ID
AV="api-version=2023-03-01"
mgmt PUT "/subscriptions/$SUB/resourcegroups/rg70?api-version=2021-04-01" '{"location":"local"}' >/dev/null

# an identity for the instance (system-assigned and one user-assigned)
mgmt PUT "/subscriptions/$SUB/providers/Badge.Compute/hosts/h70?$AV" '{"location":"local","properties":{}}' >/dev/null
JOIN=$(mgmt POST "/subscriptions/$SUB/providers/Badge.Compute/hosts/h70/joinToken?$AV" | jq -r .joinToken)
"$BADGE_BIN" agent --data-dir "$A" --server "$BADGE_URL" --ca-file "$CA" --join-token "$JOIN" \
	--isolation appservice --sync-timeout 5 >>"$A.log" 2>&1 </dev/null &
bt_cleanup bt_stop $!
bt_log "$A.log"
UAI=$(mgmt PUT "/subscriptions/$SUB/resourceGroups/rg70/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai70?api-version=2023-01-31" '{"location":"local"}')
UAI_ID=$(jq -r .id <<<"$UAI") UAI_CID=$(jq -r .properties.clientId <<<"$UAI") UAI_OID=$(jq -r .properties.principalId <<<"$UAI")
VMJSON=$(mgmt PUT "/subscriptions/$SUB/resourceGroups/rg70/providers/Microsoft.Compute/virtualMachines/app70?$AV" \
	"{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned, UserAssigned\",\"userAssignedIdentities\":{\"$UAI_ID\":{}}},\"properties\":{\"hostId\":\"h70\"}}")
OID=$(jq -r .identity.principalId <<<"$VMJSON")

# the vault: the operator may do everything, the instance may get secrets
KV="/subscriptions/$SUB/resourceGroups/rg70/providers/Microsoft.KeyVault/vaults/kv70"
mgmt PUT "$KV?api-version=2023-07-01" "{\"location\":\"local\",\"properties\":{\"tenantId\":\"$BADGE_TENANT_ID\",
	\"sku\":{\"family\":\"A\",\"name\":\"standard\"},\"accessPolicies\":[
	{\"tenantId\":\"$BADGE_TENANT_ID\",\"objectId\":\"$ADMIN_OID\",\"permissions\":{\"secrets\":[\"all\"],\"keys\":[\"all\"]}},
	{\"tenantId\":\"$BADGE_TENANT_ID\",\"objectId\":\"$OID\",\"permissions\":{\"secrets\":[\"get\"]}}]}}" >/dev/null
VAULT="$BADGE_URL/vaults/kv70"

# the Key Vault client through the npm tests' operations (two api-versions, two vaults' worth of names)
drv() { env AUTHORITY="$BADGE_URL" TENANT="$BADGE_TENANT_ID" CLIENT_ID="$CLIENT_ID" CLIENT_SECRET="$CLIENT_SECRET" \
	NO_VERIFY=1 SSL_CERT_FILE="$CA" "$@"; }
out=$(drv timeout 300 "$work/kvdriver" "$VAULT") || bt_fail "libbadge Key Vault driver: $out"
grep -q '^PASS' <<<"$out" || bt_fail "driver: $out"
echo "$out" | tail -1
mgmt PUT "${KV}2?api-version=2023-07-01" "{\"location\":\"local\",\"properties\":{\"tenantId\":\"$BADGE_TENANT_ID\",
	\"sku\":{\"family\":\"A\",\"name\":\"standard\"},\"accessPolicies\":[
	{\"tenantId\":\"$BADGE_TENANT_ID\",\"objectId\":\"$ADMIN_OID\",\"permissions\":{\"secrets\":[\"all\"],\"keys\":[\"all\"]}}]}}" >/dev/null
out=$(drv API_VERSION=2025-07-01 timeout 300 "$work/kvdriver" "${VAULT}2") || bt_fail "driver with 2025-07-01: $out"
grep -q '^PASS' <<<"$out" || bt_fail "driver (2025-07-01): $out"

# the operator stores the secret with the CLI (itself a libbadge client)
"$BADGE_BIN" keyvault secret set --data-dir "$S" --vault-name kv70 --name db-password --value s3cr3t-70 >/dev/null ||
	bt_fail "operator could not set the secret"

ready() {
	"$BADGE_BIN" agent status --data-dir "$A" 2>/dev/null |
		jq -e '.instances[] | select(.name == "app70") | .identities | length > 1 and all(.credential)' >/dev/null
}
bt_wait_for ready
# inside the instance: only what App Service gives (IDENTITY_ENDPOINT, IDENTITY_HEADER) and the CA
in_app() { "$BADGE_BIN" vm exec --data-dir "$A" app70 -- env -i PATH="$PATH" SSL_CERT_FILE="$CA" \
	IDENTITY_ENDPOINT="$("$BADGE_BIN" vm exec --data-dir "$A" app70 -- printenv IDENTITY_ENDPOINT)" \
	IDENTITY_HEADER="$("$BADGE_BIN" vm exec --data-dir "$A" app70 -- printenv IDENTITY_HEADER)" "$@"; }
out=$(in_app "$work/read-secret" --no-challenge-verification "$VAULT" db-password) ||
	bt_fail "read-secret inside the instance: $out"
bt_assert_eq "$out" "s3cr3t-70" "read-secret inside the App Service instance"
out=$(in_app "$work/read-secret-static" --no-challenge-verification "$VAULT" db-password) ||
	bt_fail "statically linked read-secret: $out"
bt_assert_eq "$out" "s3cr3t-70" "statically linked read-secret"
# with verification on, an IP-addressed vault is refused before any token is sent
if out=$(in_app "$work/read-secret" "$VAULT" db-password 2>&1); then bt_fail "verification passed for an IP vault"; fi
grep -q BADGE_E_CHALLENGE <<<"$out" || bt_fail "verification: $out"

# badge token: the instance's identities
claim() { cut -d. -f2 <<<"$1" | tr '_-' '/+' | { read -r s; while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; } | jq -r ".$2"; }
t=$(in_app "$BADGE_BIN" token --resource "$BADGE_VAULT_RESOURCE" --raw) || bt_fail "badge token: $t"
bt_assert_eq "$(claim "$t" oid)" "$OID" "badge token (system-assigned)"
j=$(in_app "$BADGE_BIN" token --resource "$BADGE_VAULT_RESOURCE")
bt_assert_eq "$(jq -r .source <<<"$j")" app-service "badge token source"
[[ $(jq -r .expiresOn <<<"$j") -gt $(date +%s) ]] || bt_fail "expiresOn: $j"
for sel in "--client-id $UAI_CID" "--object-id $UAI_OID" "--resource-id $UAI_ID"; do
	# shellcheck disable=SC2086
	t=$(in_app "$BADGE_BIN" token --resource "$BADGE_VAULT_RESOURCE" --raw $sel) || bt_fail "badge token $sel: $t"
	bt_assert_eq "$(claim "$t" oid)" "$UAI_OID" "badge token $sel"
done
if in_app "$BADGE_BIN" token --client-id 00000000-0000-0000-0000-000000000000 --raw >/dev/null 2>"$work/err"; then
	bt_fail "a token for an identity the instance does not have"
fi

# the instance is not allowed on the second vault: 403, reported as such
if out=$(in_app "$work/read-secret" --no-challenge-verification "${VAULT}2" c-s1 2>&1); then bt_fail "read without a policy"; fi
grep -q BADGE_E_FORBIDDEN <<<"$out" || bt_fail "without a policy: $out"
echo "PASS 70-libbadge-appservice"
