#!/usr/bin/env bash
# badge login with a service principal: by secret and by certificate (a PEM holding the
# certificate and its key; tokens by a client assertion signed with the key), from no profile at
# all; later commands use the saved profile; refusals name what was wrong.
source "$BADGE_SRC/tests/lib.sh"
dir=$(bt_tmpdir)
bt_start_server "$dir/server"
admin() { BADGE_DATA_DIR="$dir/server" "$BADGE_BIN" "$@"; }
# the signed-in user's commands: only the profile in BADGE_CONFIG_DIR
user() { env -u BADGE_DATA_DIR -u BADGE_ADMIN_FILE BADGE_CONFIG_DIR="$dir/cfg" "$BADGE_BIN" "$@"; }

# an application with a certificate credential, Reader of the subscription
sp=$(admin directory principal create --display-name login-cert)
app=$(jq -r .appId <<<"$sp")
oid=$(jq -r .objectId <<<"$sp")
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/sp.key" -out "$dir/sp.crt" -days 2 -subj "/CN=login-cert" 2>/dev/null
cat "$dir/sp.crt" "$dir/sp.key" >"$dir/sp.pem"
admin directory credential add-cert --id "$app" --cert "$dir/sp.crt" >/dev/null
admin role assignment create --assignee-object-id "$oid" --role Reader --scope "/subscriptions/$BADGE_SUBSCRIPTION_ID" >/dev/null
admin group create -n login-rg >/dev/null

# no profile yet: commands say so
if user group list >/dev/null 2>"$dir/err"; then bt_fail "a command worked without a login"; fi

# login --certificate (relative path, stored absolute)
(cd "$dir" && user login --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" --service-principal -u "$app" \
	--certificate sp.pem --tenant "$BADGE_TENANT_ID") >"$dir/login.json" || bt_fail "login --certificate"
bt_assert_eq "$(jq -r .subscriptionId "$dir/login.json")" "$BADGE_SUBSCRIPTION_ID" "login: subscription"
bt_assert_eq "$(jq -r .credential "$dir/login.json")" certificate "login: credential kind"
bt_assert_eq "$(jq -r .certificateFile "$dir/cfg/profile.json")" "$dir/sp.pem" "profile: certificate file"
bt_assert_eq "$(jq -r .clientSecret "$dir/cfg/profile.json")" "" "profile: no secret"
bt_assert_eq "$(stat -c %a "$dir/cfg/profile.json")" 600 "profile mode"
# later commands sign a fresh assertion each time
user group list | jq -e '.value | map(.name) | index("login-rg") != null' >/dev/null || bt_fail "group list as the cert SP"
user group show -n login-rg | jq -e '.name == "login-rg"' >/dev/null || bt_fail "group show as the cert SP"
# Reader: writes are refused, with ARM's error
if user group create -n nope >/dev/null 2>"$dir/err"; then bt_fail "Reader created a group"; fi
grep -q AuthorizationFailed "$dir/err" || { cat "$dir/err"; bt_fail "write refusal not named"; }
echo "login --certificate: ok"

# a key that does not belong to the certificate is refused before any request
openssl genrsa -out "$dir/other.key" 2048 2>/dev/null
cat "$dir/sp.crt" "$dir/other.key" >"$dir/mismatch.pem"
if user login --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" -u "$app" --certificate "$dir/mismatch.pem" \
	--tenant "$BADGE_TENANT_ID" >/dev/null 2>"$dir/err"; then bt_fail "a mismatched key logged in"; fi
grep -q "does not belong to its certificate" "$dir/err" || { cat "$dir/err"; bt_fail "mismatch not named"; }
# a certificate the directory does not know is refused by the directory
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/u.key" -out "$dir/u.crt" -days 2 -subj "/CN=unknown" 2>/dev/null
cat "$dir/u.crt" "$dir/u.key" >"$dir/unknown.pem"
if user login --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" -u "$app" --certificate "$dir/unknown.pem" \
	--tenant "$BADGE_TENANT_ID" >/dev/null 2>"$dir/err"; then bt_fail "an unregistered certificate logged in"; fi
grep -q "login failed" "$dir/err" || { cat "$dir/err"; bt_fail "unknown certificate: unexpected error"; }
# a file without a key
if user login --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" -u "$app" --certificate "$dir/sp.crt" \
	--tenant "$BADGE_TENANT_ID" >/dev/null 2>"$dir/err"; then bt_fail "a certificate without its key logged in"; fi
grep -q "must hold a PEM certificate and its private key" "$dir/err" || { cat "$dir/err"; bt_fail "keyless PEM"; }
if user login -u "$app" --certificate "$dir/sp.pem" --password x --tenant "$BADGE_TENANT_ID" 2>/dev/null; then
	bt_fail "--password with --certificate accepted"
fi
# the failed attempts left the profile alone
user group show -n login-rg >/dev/null || bt_fail "profile damaged by failed logins"

# login with a secret from no profile, replacing the certificate
rm -rf "$dir/cfg"
sec=$(admin directory credential add-secret --id "$app" | jq -r .secretText)
user login --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" --service-principal -u "$app" -p "$sec" \
	--tenant "$BADGE_TENANT_ID" | jq -e '.credential == "secret"' >/dev/null || bt_fail "login with a secret"
jq -e 'has("certificateFile") | not' "$dir/cfg/profile.json" >/dev/null || bt_fail "secret login kept a certificate"
user group show -n login-rg >/dev/null || bt_fail "group show after secret login"
if user login --server "$BADGE_URL" --ca-file "$BADGE_CA_FILE" -u "$app" -p wrong --tenant "$BADGE_TENANT_ID" \
	>/dev/null 2>"$dir/err"; then bt_fail "a wrong secret logged in"; fi
grep -q "login failed" "$dir/err" || { cat "$dir/err"; bt_fail "wrong secret: unexpected error"; }
echo "ok 32-manager-login"
