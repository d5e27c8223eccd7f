#!/usr/bin/env bash
# Debian's azure-cli against badge: `az cloud register --endpoint-resource-manager` discovers the
# other endpoints from badge's /metadata/endpoints (trusting badge's CA through REQUESTS_CA_BUNDLE
# and SSL_CERT_FILE), `az cloud show` shows them, `az login --service-principal` (MSAL Python
# against badge's directory) signs in against the registered cloud, and `az account list|show`
# show the default subscription. (A secret may start with "-": az takes it as --password=SECRET.)
# Runs in a network namespace of its own, where login./management.badge.internal resolve to the
# server: MSAL checks that the issuer in the discovery document is on the authority's host.
source "$BADGE_SRC/tests/lib.sh"
source "$BADGE_SRC/tests/netns.sh"
bt_netns_enter
command -v az >/dev/null || { echo "SKIP: az (Debian's azure-cli) is not installed"; exit 0; }

dir=$(bt_tmpdir)
bt_start_server "$dir/server"
export BADGE_DATA_DIR="$dir/server"
export AZURE_CONFIG_DIR="$dir/az"
mkdir -p "$AZURE_CONFIG_DIR"
export AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ONLY_SHOW_ERRORS=true AZURE_CORE_NO_COLOR=true
export REQUESTS_CA_BUNDLE="$BADGE_CA_FILE" SSL_CERT_FILE="$BADGE_CA_FILE"
# never the machine's IMDS, whatever az tries
export IDENTITY_ENDPOINT=http://127.0.0.1:9/ IDENTITY_HEADER=none
unset MSI_ENDPOINT ARM_CLOUD_METADATA_URL
az() { timeout 120 /usr/bin/az "$@"; }

client_id=$(jq -r .clientId "$dir/server/admin.json")
secret=$(jq -r .clientSecret "$dir/server/admin.json")
mgmt="${BADGE_MANAGEMENT_URL%/}/"
login="${BADGE_LOGIN_URL%/}"

# ---- az cloud register: the endpoints come from badge's /metadata/endpoints ----
az cloud register -n Badge --endpoint-resource-manager "$mgmt" --suffix-keyvault-dns ".$BADGE_VAULT_SUFFIX" \
	>"$dir/register.out" 2>&1 || { cat "$dir/register.out"; bt_fail "az cloud register"; }
cloud=$(az cloud show -n Badge -o json)
echo "$cloud" | jq . >"$dir/cloud.json"
bt_log "$dir/cloud.json"
bt_assert_eq "$(jq -r .endpoints.resourceManager <<<"$cloud")" "$mgmt" "resourceManager"
bt_assert_eq "$(jq -r .endpoints.management <<<"$cloud")" "$mgmt" "management (defaults to resourceManager)"
# the authority in the /adfs form, which MSAL Python 1.21 uses without instance discovery at
# login.microsoftonline.com (as on Azure Stack Hub's ADFS clouds)
bt_assert_eq "$(jq -r .endpoints.activeDirectory <<<"$cloud" | sed 's:/*$::')" "$login/adfs" "activeDirectory"
bt_assert_eq "$(jq -r .endpoints.activeDirectoryResourceId <<<"$cloud")" "$BADGE_MANAGEMENT_RESOURCE" \
	"activeDirectoryResourceId (the ARM audience)"
jq -e '.endpoints.activeDirectoryGraphResourceId | startswith("https://graph.")' <<<"$cloud" >/dev/null ||
	bt_fail "activeDirectoryGraphResourceId not discovered"
bt_assert_eq "$(jq -r .suffixes.keyvaultDns <<<"$cloud")" ".$BADGE_VAULT_SUFFIX" "keyvaultDns"
echo "az cloud register/show: endpoints discovered from badge"

az cloud set -n Badge
bt_assert_eq "$(az cloud show -o tsv --query name)" Badge "active cloud"

# ---- az login --service-principal (MSAL Python 1.21 against badge's directory) ----
az login --service-principal -u "$client_id" --password="$secret" --tenant "$BADGE_TENANT_ID" -o json \
	>"$dir/login.json" 2>"$dir/login.err" || { cat "$dir/login.err" "$dir/login.json"; bt_fail "az login --service-principal"; }
jq -e --arg s "$BADGE_SUBSCRIPTION_ID" --arg t "$BADGE_TENANT_ID" \
	'length == 1 and .[0].id == $s and .[0].tenantId == $t and .[0].state == "Enabled" and .[0].isDefault
	 and .[0].user.type == "servicePrincipal" and .[0].cloudName == "Badge"' "$dir/login.json" >/dev/null ||
	{ cat "$dir/login.json"; bt_fail "az login: unexpected subscription list"; }
echo "az login --service-principal: signed in, one subscription"

acc=$(az account show -o json)
bt_assert_eq "$(jq -r .id <<<"$acc")" "$BADGE_SUBSCRIPTION_ID" "account show: id"
bt_assert_eq "$(jq -r .tenantId <<<"$acc")" "$BADGE_TENANT_ID" "account show: tenantId"
bt_assert_eq "$(jq -r .user.name <<<"$acc")" "$client_id" "account show: user"
jq -e '.name | length > 0' <<<"$acc" >/dev/null || bt_fail "account show: no subscription name"
az account list -o json | jq -e --arg s "$BADGE_SUBSCRIPTION_ID" 'map(select(.id == $s and .isDefault)) | length == 1' \
	>/dev/null || bt_fail "account list: default subscription missing"
echo "az account list/show: the default subscription"

# the token az holds is badge's, for the ARM audience, and works for ARM calls
tok=$(az account get-access-token -o json)
bt_assert_eq "$(jq -r .tenant <<<"$tok")" "$BADGE_TENANT_ID" "get-access-token: tenant"
az rest --method get --url "${mgmt}subscriptions/$BADGE_SUBSCRIPTION_ID?api-version=2019-11-01" -o json |
	jq -e --arg s "$BADGE_SUBSCRIPTION_ID" '.subscriptionId == $s' >/dev/null || bt_fail "az rest to ARM"
az group create -n az-rg -l local -o json | jq -e '.name == "az-rg" and .properties.provisioningState == "Succeeded"' \
	>/dev/null || bt_fail "az group create"
az group list -o json | jq -e 'map(.name) | index("az-rg") != null' >/dev/null || bt_fail "az group list"
echo "az rest / az group: ARM calls with the token"

# a wrong secret is refused by the directory
if az login --service-principal -u "$client_id" -p wrong --tenant "$BADGE_TENANT_ID" >"$dir/bad.out" 2>&1; then
	bt_fail "az login with a wrong secret succeeded"
fi
grep -q "AADSTS7000215" "$dir/bad.out" || { cat "$dir/bad.out"; bt_fail "wrong secret: unexpected error"; }
echo "PASS"
