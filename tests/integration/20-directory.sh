#!/usr/bin/env bash
# The directory against a running server over HTTPS: the env and admin files, configuration
# checking, token endpoint errors and limits, discovery, the admin CLI, and durability of an
# acknowledged write across kill -9.
source "$BADGE_SRC/tests/lib.sh"
dir=$(bt_tmpdir)
srv="$dir/server"

# --check-config: a good file passes, an unknown key is named with its line
printf 'listen = 127.0.0.1:0\n# comment\ntoken_lifetime = 12h\n' >"$dir/good.conf"
"$BADGE_BIN" server --data-dir "$srv" --config "$dir/good.conf" --check-config | grep -q valid ||
	bt_fail "a valid config was refused"
printf 'listen = 127.0.0.1:0\nbogus_key = 1\n' >"$dir/bad.conf"
if out=$("$BADGE_BIN" server --data-dir "$srv" --config "$dir/bad.conf" --check-config 2>&1); then
	bt_fail "an unknown key was accepted"
fi
grep -q "line 2" <<<"$out" && grep -q "bogus_key" <<<"$out" || bt_fail "config error should name line and key: $out"
if "$BADGE_BIN" server --data-dir "$srv" --token-lifetime 1s --check-config 2>/dev/null; then
	bt_fail "a token lifetime below the minimum was accepted"
fi

bt_start_server "$srv" --config "$dir/good.conf"
export BADGE_DATA_DIR=$srv
for v in BADGE_TENANT_ID BADGE_SUBSCRIPTION_ID BADGE_LOGIN_URL BADGE_MANAGEMENT_URL BADGE_MANAGEMENT_RESOURCE \
	BADGE_VAULT_SUFFIX BADGE_VAULT_RESOURCE BADGE_CA_FILE SSL_CERT_FILE NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE; do
	[[ -n "${!v:-}" ]] || bt_fail "env file lacks $v"
done
bt_assert_eq "$(stat -c %a "$srv/admin.json")" 600 "admin.json mode"
bt_assert_eq "$(jq -r .tenantId "$srv/admin.json")" "$BADGE_TENANT_ID" "admin tenant"
[[ "$BADGE_LOGIN_URL" == "https://login.badge.internal:$BADGE_PORT" ]] || bt_fail "login url $BADGE_LOGIN_URL"

c() { curl -sS --cacert "$BADGE_CA_FILE" "$@"; }
tok="$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token"

# discovery over HTTPS: issuer is the authority's name, endpoints follow the Host used
cfg=$(c "$BADGE_URL/$BADGE_TENANT_ID/v2.0/.well-known/openid-configuration")
bt_assert_eq "$(jq -r .issuer <<<"$cfg")" "$BADGE_LOGIN_URL/$BADGE_TENANT_ID/v2.0" "v2 issuer"
bt_assert_eq "$(jq -r .token_endpoint <<<"$cfg")" "$tok" "token endpoint"
[[ $(c "$(jq -r .jwks_uri <<<"$cfg")" | jq '.keys | length') -ge 1 ]] || bt_fail "empty JWKS"
# the path quirks the SDKs produce
c -o /dev/null -w '%{http_code}' "$BADGE_URL//$BADGE_TENANT_ID/discovery/keys/" | grep -q 200 || bt_fail "// and trailing / not tolerated"

# token endpoint errors, shaped like Entra's
code() { c -o "$dir/body" -w '%{http_code}' "$@"; }
bt_assert_eq "$(code -d grant_type=client_credentials "$tok")" 400 "missing client_id"
bt_assert_eq "$(jq -r .error "$dir/body")" invalid_request "missing client_id error"
jq -e '.error_codes[0] == 900144 and (.trace_id|length) == 36 and (.correlation_id|length) > 0 and (.timestamp|length) > 0' \
	"$dir/body" >/dev/null || bt_fail "Entra error fields: $(cat "$dir/body")"
bt_assert_eq "$(code -d grant_type=authorization_code -d client_id=x "$tok")" 400 "unsupported grant"
bt_assert_eq "$(jq -r .error "$dir/body")" unsupported_grant_type "grant error"
admin_id=$(jq -r .clientId "$srv/admin.json")
bt_assert_eq "$(code -d grant_type=client_credentials -d client_id="$admin_id" -d client_secret=nope \
	--data-urlencode scope="$BADGE_MANAGEMENT_RESOURCE/.default" "$tok")" 401 "wrong secret"
bt_assert_eq "$(jq -r .error "$dir/body")" invalid_client "wrong secret error"
# oversized body: refused, the server lives on
head -c 300000 /dev/zero | tr '\0' 'a' >"$dir/big"
# (with Expect: 100-continue, as clients send for large bodies: the 413 comes before any body byte;
# a client that pushes the body regardless may see the connection closed under it instead)
bt_assert_eq "$(code --data-binary @"$dir/big" -H 'Expect: 100-continue' -H 'Content-Type: application/x-www-form-urlencoded' "$tok")" 413 "oversized body"
# oversized header block
big=$(head -c 40000 /dev/zero | tr '\0' 'b')
st=$(c -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$BADGE_URL/$BADGE_TENANT_ID/discovery/keys" || true)
[[ "$st" == 431 || "$st" == 413 || "$st" == 400 || "$st" == 000 ]] || bt_fail "oversized header answered $st"
kill -0 "$BT_SERVER_PID" || bt_fail "server died on bad input"

# the admin CLI: principal, secret, token, removal
sp=$("$BADGE_BIN" directory principal create --display-name it-app)
app=$(jq -r .appId <<<"$sp")
oid=$(jq -r .objectId <<<"$sp")
secret=$("$BADGE_BIN" directory credential add-secret --id "$app" | jq -r .secretText)
get_token() {
	code -d grant_type=client_credentials -d client_id="$app" --data-urlencode client_secret="$1" \
		--data-urlencode scope="$BADGE_VAULT_RESOURCE/.default" "$tok"
}
bt_assert_eq "$(get_token "$secret")" 200 "token with the new secret"
"$BADGE_BIN" directory credential list --id "$oid" | jq -e '.value | length == 1 and .[0].type == "Password"' >/dev/null ||
	bt_fail "credential list"
! grep -rq "$secret" "$srv"/badge.db* || bt_fail "the client secret is stored in clear"
"$BADGE_BIN" directory principal list | jq -e --arg a "$app" 'any(.value[]; .appId == $a)' >/dev/null || bt_fail "principal list"
if "$BADGE_BIN" directory principal show --id not-a-guid 2>"$dir/err"; then bt_fail "bad id accepted"; fi
grep -q "GUID" "$dir/err" || bt_fail "bad id error: $(cat "$dir/err")"

# every token request is audited, issued or refused, with who asked; never the secret
audit=$("$BADGE_BIN" directory audit)
jq -e --arg a "$app" 'any(.value[]; .appid == $a and .status == 200 and .operation == "TokenIssueV2")' <<<"$audit" >/dev/null ||
	bt_fail "issued token not audited"
jq -e --arg a "$admin_id" 'any(.value[]; .appid == $a and .status == 401)' <<<"$audit" >/dev/null ||
	bt_fail "refused token request not audited"
! grep -q "$secret" <<<"$audit" || bt_fail "a secret in the audit trail"

# an acknowledged write survives kill -9
sp2=$("$BADGE_BIN" directory principal create --display-name survives)
app2=$(jq -r .appId <<<"$sp2")
secret2=$("$BADGE_BIN" directory credential add-secret --id "$app2" | jq -r .secretText)
kill -9 "$BT_SERVER_PID"
wait "$BT_SERVER_PID" 2>/dev/null || true
bt_start_server "$srv" --config "$dir/good.conf"
tok="$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token"
app=$app2
bt_assert_eq "$(get_token "$secret2")" 200 "token after kill -9 and restart"

# deleting the principal: its secret stops working at once
"$BADGE_BIN" directory principal delete --id "$app2" >/dev/null
bt_assert_eq "$(get_token "$secret2")" 400 "token for a deleted principal"
bt_assert_eq "$(jq -r .error "$dir/body")" unauthorized_client "deleted principal error"
echo PASS
