#!/usr/bin/env bash
# The generic resource list (GET /subscriptions/{sub}[/resourceGroups/{rg}]/resources) through
# the real clients: @azure/arm-resources' ResourceManagementClient (32-resource-list.mjs: list,
# listByResourceGroup, $filter, $expand, paging with top through nextLink, errors), then Debian's
# azure-cli (`az resource list` with and without -g, --resource-type, --name, --tag; `az keyvault
# show -n` and `az keyvault list` without -g, which look vaults up through it), set up as in
# 31-az-cloud-login.sh (a registered cloud, a service-principal login). The resources: two groups,
# a host, two user-assigned identities, an instance with both kinds of identity, a vault.
# Runs in a network namespace of its own, where login./management.badge.internal resolve to the
# server: MSAL checks that the issuer in the discovery document is on the authority's host.
source "$BADGE_SRC/tests/lib.sh"
source "$BADGE_SRC/tests/netns.sh"
bt_netns_enter
cd "$BADGE_SRC/tests/compat"
[[ -d node_modules/@azure/arm-resources && -d node_modules/@azure/arm-msi ]] ||
	bt_fail "npm packages missing: run scripts/install-deps.sh (npm ci in tests/compat)"

dir=$(bt_tmpdir)
bt_start_server "$dir/server"
export BADGE_DATA_DIR="$dir/server"
badge() { "$BADGE_BIN" "$@"; }

export CLIENT_ID=$(jq -r .clientId "$dir/server/admin.json")
export CLIENT_SECRET=$(jq -r .clientSecret "$dir/server/admin.json")
export GROUP_A=res-a GROUP_B=res-b VAULT=compatvault32
badge group create -n "$GROUP_A" >/dev/null
badge group create -n "$GROUP_B" >/dev/null
badge host create -n h1 >/dev/null
ida=$(badge identity create -g "$GROUP_A" -n ida | jq -r .id)
[[ "$ida" == /subscriptions/*/ida ]] || bt_fail "identity create: id $ida"
badge identity create -g "$GROUP_B" -n idb >/dev/null
badge vm create -g "$GROUP_A" -n vm1 --assign-identity '[system]' "$ida" >/dev/null
badge keyvault create -g "$GROUP_B" -n "$VAULT" >/dev/null

node 32-resource-list.mjs

# ---- az resource list (Debian's azure-cli), signed in as in 31-az-cloud-login.sh ----
if ! command -v az >/dev/null; then
	echo "SKIP (az part): az (Debian's azure-cli) is not installed"
	echo "PASS"
	exit 0
fi
export AZURE_CONFIG_DIR="$dir/az"
mkdir -p "$AZURE_CONFIG_DIR"
export AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ONLY_SHOW_ERRORS=true AZURE_CORE_NO_COLOR=true
export REQUESTS_CA_BUNDLE="$BADGE_CA_FILE" SSL_CERT_FILE="$BADGE_CA_FILE"
# never the machine's IMDS, whatever az tries
export IDENTITY_ENDPOINT=http://127.0.0.1:9/ IDENTITY_HEADER=none
unset MSI_ENDPOINT ARM_CLOUD_METADATA_URL
az() { timeout 120 /usr/bin/az "$@"; }
az cloud register -n Badge --endpoint-resource-manager "${BADGE_MANAGEMENT_URL%/}/" \
	--suffix-keyvault-dns ".$BADGE_VAULT_SUFFIX" >"$dir/register.out" 2>&1 ||
	{ cat "$dir/register.out"; bt_fail "az cloud register"; }
az cloud set -n Badge
az login --service-principal -u "$CLIENT_ID" --password="$CLIENT_SECRET" --tenant "$BADGE_TENANT_ID" \
	>"$dir/login.json" 2>"$dir/login.err" || { cat "$dir/login.err"; bt_fail "az login --service-principal"; }

# az resource list prints what the server listed; names in the server's order (resource id)
azlist() { az resource list "$@" -o json | jq -r 'map(.name) | join(",")'; }
out=$(az resource list -o json)
echo "$out" >"$dir/az-resource-list.json"
bt_log "$dir/az-resource-list.json"
bt_assert_eq "$(jq -r 'map(.name) | join(",")' <<<"$out")" "h1,vm1,ida,$VAULT,idb" "az resource list"
jq -e --arg g "$GROUP_A" 'map(select(.name == "vm1"))[0] | .type == "Microsoft.Compute/virtualMachines"
	and .resourceGroup == $g and .identity.type == "SystemAssigned, UserAssigned" and .provisioningState == "Succeeded"
	and (.createdTime | length > 0)' <<<"$out" >/dev/null || bt_fail "az resource list: vm1 shape"
bt_assert_eq "$(azlist -g "$GROUP_A")" "vm1,ida" "az resource list -g $GROUP_A"
bt_assert_eq "$(azlist -g "$GROUP_B" --resource-type Microsoft.ManagedIdentity/userAssignedIdentities)" "idb" \
	"az resource list -g --resource-type"
bt_assert_eq "$(azlist --resource-type microsoft.keyvault/vaults)" "$VAULT" "az resource list --resource-type"
bt_assert_eq "$(azlist -n vm1)" "vm1" "az resource list -n"
bt_assert_eq "$(azlist --tag env=prod)" "ida" "az resource list --tag env=prod"
bt_assert_eq "$(azlist --tag 'en*')" "ida,idb" "az resource list --tag en*"
if az resource list -g no-such-group -o json >"$dir/nogroup.out" 2>&1; then
	bt_fail "az resource list -g no-such-group succeeded"
fi
grep -q "ResourceGroupNotFound" "$dir/nogroup.out" || { cat "$dir/nogroup.out"; bt_fail "missing group: unexpected error"; }
echo "az resource list: all, -g, --resource-type, -n, --tag"
# az keyvault show without -g finds the vault's group through the generic list
az keyvault show -n "$VAULT" -o json | jq -e --arg g "$GROUP_B" '.resourceGroup == $g' >/dev/null ||
	bt_fail "az keyvault show -n (no -g)"
az keyvault list -o json | jq -e --arg v "$VAULT" 'map(.name) == [$v]' >/dev/null || bt_fail "az keyvault list (no -g)"
echo "az keyvault show -n / list without -g"
echo "PASS"
