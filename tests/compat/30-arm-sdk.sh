#!/usr/bin/env bash
# @azure/arm-msi and @azure/arm-keyvault (ClientSecretCredential against badge's directory)
# manage user-assigned identities and vaults through badge's resource manager (30-arm-sdk.mjs).
# Runs in a network namespace of its own, where login./management.badge.internal resolve to the
# server: MSAL checks that the issuer in the discovery document is on the authority's host.
source "$BADGE_SRC/tests/lib.sh"
source "$BADGE_SRC/tests/netns.sh"
bt_netns_enter compatvault30
cd "$BADGE_SRC/tests/compat"
[[ -d node_modules/@azure/arm-msi && -d node_modules/@azure/arm-keyvault ]] ||
	bt_fail "npm packages missing: run scripts/install-deps.sh (npm ci in tests/compat)"

dir=$(bt_tmpdir)
bt_start_server "$dir/server"
export BADGE_DATA_DIR="$dir/server"
badge() { "$BADGE_BIN" "$@"; }

# The SDKs talk to the names, not to 127.0.0.1 (BADGE_LOGIN_URL/BADGE_MANAGEMENT_URL use them).
[[ "$BADGE_LOGIN_URL" == https://login.* && "$BADGE_MANAGEMENT_URL" == https://management.* ]] ||
	bt_fail "unexpected URLs in env: $BADGE_LOGIN_URL $BADGE_MANAGEMENT_URL"
export CLIENT_ID=$(jq -r .clientId "$dir/server/admin.json")
export CLIENT_SECRET=$(jq -r .clientSecret "$dir/server/admin.json")
export GROUP=compat-rg
export VAULT=compatvault30
badge group create -n "$GROUP" >/dev/null
export OTHER_OID=$(badge directory principal create --display-name compat-reader | jq -r .objectId)
[[ "$OTHER_OID" =~ ^[0-9a-f-]{36}$ ]] || bt_fail "no principal object id: $OTHER_OID"

node 30-arm-sdk.mjs

# what the SDK deleted is gone from the directory too
badge identity list -g "$GROUP" | jq -e '.value | length == 0' >/dev/null || bt_fail "identities left in $GROUP"
echo "PASS"
