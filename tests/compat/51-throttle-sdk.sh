#!/usr/bin/env bash
# Real clients meet throttling: @azure/keyvault-secrets' SecretClient (and then Debian's
# azure.keyvault.secrets SecretClient) against a vault whose
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
# Debian's azure.keyvault.secrets: azure-core's retry policy honours the same 429 + Retry-After
REQUESTS_CA_BUNDLE="$BADGE_CA_FILE" timeout 120 /usr/bin/python3 - <<'PY' || bt_fail "python SecretClient under throttling"
import os, time
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
env = os.environ
seen = []
class Record(SansIOHTTPPolicy):
    def on_response(self, request, response):
        seen.append((response.http_response.status_code, response.http_response.headers.get("Retry-After")))
cred = ClientSecretCredential(env["BADGE_TENANT_ID"], env["CLIENT_ID"], env["CLIENT_SECRET"],
                              authority=env["BADGE_LOGIN_URL"], instance_discovery=False)
client = SecretClient(env["VAULT_URL"], cred, per_retry_policies=[Record()])
t0 = time.monotonic()
for i in range(3):
    assert client.get_secret("s1").value == "v1", "value"
throttled = [s for s in seen if s[0] == 429]
assert throttled, "no 429 seen: %r" % seen
assert all(r and r.isdigit() and int(r) > 0 for _, r in throttled), "Retry-After: %r" % throttled
print("python: %d responses, %d throttled, %.1f s" % (len(seen), len(throttled), time.monotonic() - t0))
PY
after=$(throttled)
(( ${after:-0} - ${before:-0} >= 2 )) || bt_fail "expected at least 2 throttled requests, /metrics says ${before:-0} -> ${after:-0}"

# the 429s are in the vault's audit trail, like any other answer (the audit is flushed in batches)
bt_wait_for bash -c '"$BADGE_BIN" keyvault audit --vault-name kvt --data-dir "$1" | grep -q "\"status\": *429"' _ "$dir/server" ||
	bt_fail "no 429 in the vault's audit trail: $("$BADGE_BIN" keyvault audit --vault-name kvt --data-dir "$dir/server" | tail -3)"
echo "PASS"
