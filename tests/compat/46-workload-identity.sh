#!/usr/bin/env bash
# Workload identity federation with the real @azure/identity (WorkloadIdentityCredential with a
# projected-token file, ClientAssertionCredential) and Debian's azure.identity
# (ClientAssertionCredential): a user-assigned identity gets a federated
# identity credential through the resource manager (issuer, subject, audience); a token signed
# by that OIDC issuer (an HTTPS server of the test's own, with a certificate from a test CA the
# badge server trusts through --federation-ca-file) is exchanged at badge for the identity's
# tokens; another subject or audience is refused with AADSTS70021; deleting the credential
# refuses the next exchange.
# Runs in a network namespace of its own, where login.badge.internal resolves to the server.
source "$BADGE_SRC/tests/lib.sh"
source "$BADGE_SRC/tests/netns.sh"
bt_netns_enter
cd "$BADGE_SRC/tests/compat"
[[ -d node_modules/@azure/identity && -d node_modules/jose ]] || bt_fail "npm packages missing: run scripts/install-deps.sh"

dir=$(bt_tmpdir)
# the issuer's TLS: a test CA and a certificate for 127.0.0.1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" \
	-days 2 -subj /CN=issuer-test-ca 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/issuer.key" -subj /CN=127.0.0.1 \
	-out "$dir/issuer.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/ext"
openssl x509 -req -in "$dir/issuer.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
	-extfile "$dir/ext" -out "$dir/issuer.crt" 2>/dev/null
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
node workload-identity.mjs issuer "$port" "$dir" >>"$dir/issuer.log" 2>&1 </dev/null &
ipid=$!
bt_cleanup bt_stop "$ipid"
bt_log "$dir/issuer.log"
issuer_up() { [[ -s "$dir/issuer-key.json" ]] && curl -sf --cacert "$dir/ca.pem" -o /dev/null "https://127.0.0.1:$port/.well-known/openid-configuration"; }
bt_wait_for issuer_up

bt_start_server "$dir/server" --federation-ca-file "$dir/ca.pem"
bt_admin_api "$dir/server" "$dir/body"
mtok=$(token "$BADGE_MANAGEMENT_RESOURCE")
[[ -n "$mtok" && "$mtok" != null ]] || bt_fail "no management token"
arm() { code -X "$1" -H "Authorization: Bearer $mtok" -H 'Content-Type: application/json' ${3:+-d "$3"} "$BADGE_URL$2"; }
RG="/subscriptions/$BADGE_SUBSCRIPTION_ID/resourceGroups/rg46"
UAI="$RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web"
st=$(arm PUT "$RG?api-version=2021-04-01" '{"location":"local"}'); [[ $st == 20? ]] || bt_fail "group: $st"
st=$(arm PUT "$UAI?api-version=2023-01-31" '{"location":"local"}'); [[ $st == 20? ]] || bt_fail "identity: $st $(cat "$dir/body")"
export UAI_CLIENT_ID=$(jq -r .properties.clientId "$dir/body") UAI_PRINCIPAL_ID=$(jq -r .properties.principalId "$dir/body")
FIC="$UAI/federatedIdentityCredentials/apps-web?api-version=2023-01-31"
st=$(arm PUT "$FIC" "{\"properties\":{\"issuer\":\"https://127.0.0.1:$port\",\"subject\":\"system:serviceaccount:apps:web\",\"audiences\":[\"api://AzureADTokenExchange\"]}}")
[[ $st == 20? ]] || bt_fail "federated credential: $st $(cat "$dir/body")"

export AUTHORITY="$BADGE_LOGIN_URL" NODE_EXTRA_CA_CERTS="$BADGE_CA_FILE"
node workload-identity.mjs client "$dir" || bt_fail "the clients failed"
# Debian's azure.identity (1.13, no WorkloadIdentityCredential yet): ClientAssertionCredential
# reading the projected token the node client left, as a workload's Python would
REQUESTS_CA_BUNDLE="$BADGE_CA_FILE" AZURE_AUTHORITY_HOST="$BADGE_LOGIN_URL" SA_TOKEN_FILE="$dir/sa-token" /usr/bin/python3 - <<'PY' || bt_fail "python ClientAssertionCredential"
import base64, json, os
from azure.identity import ClientAssertionCredential
env = os.environ
def assertion():
    with open(env["SA_TOKEN_FILE"]) as f:
        return f.read().strip()
# 1.13.0b2 passes any keyword on to object.__init__ (a bug): the authority comes from
# AZURE_AUTHORITY_HOST, as a pod's environment would give it
cred = ClientAssertionCredential(env["BADGE_TENANT_ID"], env["UAI_CLIENT_ID"], assertion)
tok = cred.get_token(env["BADGE_MANAGEMENT_RESOURCE"] + ".default").token
p = tok.split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
assert claims["oid"] == env["UAI_PRINCIPAL_ID"], claims["oid"]
print("python ClientAssertionCredential: token (oid %s)" % claims["oid"])
PY

# deleting the credential refuses the next exchange at once
st=$(arm DELETE "$FIC"); [[ $st == 200 ]] || bt_fail "delete: $st"
tok=$(cat "$dir/sa-token")
st=$(code --data-urlencode client_id="$UAI_CLIENT_ID" -d grant_type=client_credentials \
	--data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
	--data-urlencode client_assertion="$tok" --data-urlencode scope="$BADGE_MANAGEMENT_RESOURCE/.default" \
	"$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token")
[[ $st == 400 || $st == 401 ]] || bt_fail "exchange after the credential's deletion: $st $(cat "$dir/body")"
jq -e '.error_codes | index(70021)' "$dir/body" >/dev/null || bt_fail "after deletion: $(cat "$dir/body")"
echo "PASS 46-workload-identity"
