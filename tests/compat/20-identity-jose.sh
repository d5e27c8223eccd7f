#!/usr/bin/env bash
# @azure/identity (ClientSecretCredential, ClientCertificateCredential) gets tokens from badge's
# directory over HTTPS; jose verifies them through the OpenID configuration and JWKS, before and
# after a signing-key rotation.
# Runs in a network namespace of its own, where login.badge.internal resolves to the server: MSAL
# checks that the issuer in the discovery document is on the authority's host.
source "$BADGE_SRC/tests/lib.sh"
source "$BADGE_SRC/tests/netns.sh"
bt_netns_enter
cd "$BADGE_SRC/tests/compat"
[[ -d node_modules/@azure/identity ]] || bt_fail "npm packages missing: run scripts/install-deps.sh (npm ci in tests/compat)"

dir=$(bt_tmpdir)
bt_start_server "$dir/server"
export BADGE_DATA_DIR="$dir/server"
badge() { "$BADGE_BIN" "$@"; }

# an application with a secret
sp=$(badge directory principal create --display-name compat-secret)
export SECRET_CLIENT_ID=$(jq -r .appId <<<"$sp")
export SECRET_VALUE=$(badge directory credential add-secret --id "$SECRET_CLIENT_ID" | jq -r .secretText)
[[ -n "$SECRET_VALUE" && "$SECRET_VALUE" != null ]] || bt_fail "no secret returned"

# an application with a certificate whose key never leaves this directory
cp=$(badge directory principal create --display-name compat-cert)
export CERT_CLIENT_ID=$(jq -r .appId <<<"$cp")
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/cert.key" -out "$dir/cert.crt" -days 2 \
	-subj "/CN=compat-cert" 2>/dev/null
cat "$dir/cert.crt" "$dir/cert.key" >"$dir/cert.pem"
export CERT_PEM_FILE="$dir/cert.pem"
badge directory credential add-cert --id "$CERT_CLIENT_ID" --cert "$dir/cert.crt" >/dev/null

export AUTHORITY="$BADGE_LOGIN_URL"
export TOKENS_FILE="$dir/tokens.json"
node identity-jose.mjs before

# publish a new key (it does not sign yet), then make it sign
badge directory rotate-keys | jq -e '.keys | length == 2' >/dev/null || bt_fail "rotation should publish a second key"
badge directory rotate-keys --activate >/dev/null
node identity-jose.mjs after
echo "PASS"
