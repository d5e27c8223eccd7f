#!/usr/bin/env bash
# The seed scenario end to end (root: network namespaces). Inside a namespace T of its own: a
# server, an agent, an instance with a system-assigned identity, a vault with an access policy
# for that identity, a secret set by the operator (badge keyvault secret set). Inside the
# instance the real @azure/keyvault-secrets SecretClient with ManagedIdentityCredential (no
# endpoint override, host-style vault URL, challenge verification on) reads it. Removing the
# policy makes the next read 403; deleting the instance makes its token useless at once (401).
source "${BADGE_SRC:?}/tests/lib.sh"

[[ -d "$BADGE_SRC/tests/compat/node_modules/@azure/keyvault-secrets" ]] ||
	bt_fail "npm packages missing: run scripts/install-deps.sh"

source "$BADGE_SRC/tests/topology.sh"
bt_topo_begin 51
bt_topo_server

# host, agent, instance with a system-assigned identity, vault with policies, the secret
bt_topo_seed rg51 10.242.0.0 '{"secrets":["all"]}'

# inside the instance: the real SecretClient + ManagedIdentityCredential, no overrides
read_js='
const { ManagedIdentityCredential } = require("@azure/identity");
const { SecretClient } = require("@azure/keyvault-secrets");
const c = new SecretClient(process.argv[1], new ManagedIdentityCredential());
c.getSecret("db-password").then((s) => { console.log("VALUE=" + s.value); },
  (e) => { console.log("STATUS=" + (e.statusCode ?? "none") + " CODE=" + e.code); process.exit(3); });'
VAULT_URL="https://seedkv.$BADGE_VAULT_SUFFIX:$BADGE_PORT"
vm_node() { in_vm env NODE_EXTRA_CA_CERTS="$CA" NODE_PATH="$BADGE_SRC/tests/compat/node_modules" node -e "$read_js" "$VAULT_URL"; }
out=$(vm_node) || bt_fail "the instance could not read its secret: $out"
bt_assert_eq "$out" "VALUE=s3cr3t-seed" "secret read inside the instance"

# keep a vault token of the instance for the end
VTOK=$(in_vm curl -sS -H Metadata:true \
	"http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$BADGE_VAULT_RESOURCE" |
	jq -r .access_token)

# removing the policy: the next read is 403
mgmt PUT "$KV/accessPolicies/remove?api-version=2023-07-01" "{\"properties\":{\"accessPolicies\":[
	{\"tenantId\":\"$TENANT\",\"objectId\":\"$OID\",\"permissions\":{\"secrets\":[\"get\",\"list\"]}}]}}" >/dev/null
out=$(vm_node) && bt_fail "read after the policy was removed: $out"
[[ $out == "STATUS=403 CODE=Forbidden" ]] || bt_fail "after policy removal: $out"

# deleting the instance: its token is useless at once (401, not 403)
code=$(inT curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VTOK" \
	"$BADGE_URL/vaults/seedkv/secrets/db-password/?api-version=7.4")
bt_assert_eq "$code" 403 "a live identity without a policy"
mgmt DELETE "$VM/vm1?$AV" >/dev/null
code=$(inT curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VTOK" \
	"$BADGE_URL/vaults/seedkv/secrets/db-password/?api-version=7.4")
bt_assert_eq "$code" 401 "the deleted instance's token"
echo "PASS 51-vault-seed"
