#!/usr/bin/env bash
# A real client meets throttling: @azure/keyvault-secrets' SecretClient against a vault whose
# secrets limit is 2 transactions per 10 s (--vault-limit-secrets 2). The server answers 429
# Throttled with Retry-After; the SDK's retry policy waits that long and every call succeeds.
# The server's /metrics counts the 429s and the vault's audit trail holds them.
source "$BADGE_SRC/tests/lib.sh"
source "$BADGE_SRC/tests/netns.sh"
bt_netns_enter kvt
cd "$BADGE_SRC/tests/compat"
[[ -d node_modules/@azure/keyvault-secrets ]] || bt_fail "npm packages missing: run scripts/install-deps.sh"

dir=$(bt_tmpdir)
bt_start_server "$dir/server" --vault-limit-secrets 2
body=$dir/body
bt_admin_api "$dir/server" "$body"
bt_admin_vault kvt
export CLIENT_ID=$BT_ADMIN_ID CLIENT_SECRET=$BT_ADMIN_SECRET
export VAULT_URL="https://kvt.$BADGE_VAULT_SUFFIX:$BADGE_PORT"

throttled() { c "$BADGE_URL/metrics" | awk '$1 == "badge_vault_throttled_total" {print $2}'; }
before=$(throttled)
timeout 120 node 51-throttle-sdk.js || bt_fail "SecretClient under throttling"
after=$(throttled)
(( ${after:-0} - ${before:-0} >= 2 )) || bt_fail "expected at least 2 throttled requests, /metrics says ${before:-0} -> ${after:-0}"

# the 429s are in the vault's audit trail, like any other answer (the audit is flushed in batches)
bt_wait_for bash -c '"$BADGE_BIN" keyvault audit --vault-name kvt --data-dir "$1" | grep -q "\"status\": *429"' _ "$dir/server" ||
	bt_fail "no 429 in the vault's audit trail: $("$BADGE_BIN" keyvault audit --vault-name kvt --data-dir "$dir/server" | tail -3)"
echo "PASS"
