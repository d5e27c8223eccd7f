#!/usr/bin/env bash
# @azure/identity meets a throttled token endpoint: a client limited to 2 token requests per
# 10 s (--token-limit-client 2) asks four times (a new credential each time, so MSAL's cache does
# not answer); the server answers the 3rd and 4th with 429 and Retry-After in Entra's shape, and
# the SDK waits and succeeds. /metrics counts the throttled requests.
source "$BADGE_SRC/tests/lib.sh"
source "$BADGE_SRC/tests/netns.sh"
bt_netns_enter
cd "$BADGE_SRC/tests/compat"
[[ -d node_modules/@azure/identity ]] || bt_fail "npm packages missing: run scripts/install-deps.sh"

dir=$(bt_tmpdir)
bt_start_server "$dir/server" --token-limit-client 2
export BADGE_DATA_DIR="$dir/server"
sp=$("$BADGE_BIN" directory principal create --display-name throttled-client)
export CID=$(jq -r .appId <<<"$sp")
export SEC=$("$BADGE_BIN" directory credential add-secret --id "$CID" | jq -r .secretText)
[[ -n "$SEC" && "$SEC" != null ]] || bt_fail "no secret"
export NODE_EXTRA_CA_CERTS="$BADGE_CA_FILE"

# the raw answer first: Entra's error shape and a Retry-After in seconds
for i in 1 2 3; do
	st=$(curl -sS --cacert "$BADGE_CA_FILE" -D "$dir/headers" -o "$dir/body" -w '%{http_code}' \
		-d grant_type=client_credentials --data-urlencode client_id="$CID" --data-urlencode client_secret="$SEC" \
		--data-urlencode scope="$BADGE_MANAGEMENT_RESOURCE/.default" "$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token")
done
bt_assert_eq "$st" 429 "the third request within 10 s"
jq -e '.error == "temporarily_unavailable" and (.error_codes | type == "array") and (.error_description | test("AADSTS"))' \
	"$dir/body" >/dev/null || bt_fail "429 body: $(cat "$dir/body")"
grep -qiE '^retry-after: [1-9][0-9]*' "$dir/headers" || bt_fail "429 without Retry-After: $(cat "$dir/headers")"

timeout 120 node -e '
const { ClientSecretCredential } = require("@azure/identity");
const env = process.env;
function fail(m) { console.error("FAIL: " + m); process.exit(1); }
(async () => {
  const t0 = Date.now(), at = [];
  for (let i = 0; i < 4; i++) {
    const c = new ClientSecretCredential(env.BADGE_TENANT_ID, env.CID, env.SEC,
      { authorityHost: env.BADGE_LOGIN_URL, disableInstanceDiscovery: true });
    const t = await c.getToken(env.BADGE_MANAGEMENT_RESOURCE + ".default");
    if (!t?.token) fail("no token " + i);
    at.push(Date.now() - t0);
  }
  // the bucket was empty when we began (the curl requests above): every request waited
  if (at[3] < 8000) fail("the SDK did not wait for Retry-After: " + at.join(", "));
  console.log("ok: four tokens at " + at.join(", ") + " ms");
})().catch((e) => fail(e.message));' || bt_fail "@azure/identity under token throttling"

n=$(curl -sS --cacert "$BADGE_CA_FILE" "$BADGE_URL/metrics" | awk '$1 == "badge_directory_throttled_total" {print $2}')
(( ${n:-0} >= 2 )) || bt_fail "throttled token requests in /metrics: ${n:-none}"
echo "PASS"
