#!/usr/bin/env bash
# The resource manager against a running server, through the badge CLI and curl: subscriptions
# and cloud metadata, groups, user-assigned and system-assigned identities with their lifecycle
# (principals and credentials follow the resources), hosts and join tokens, vaults and access
# policies, role assignments, ARM-shaped errors, and two concurrent PUTs of one instance.
source "$BADGE_SRC/tests/lib.sh"
dir=$(bt_tmpdir)
srv="$dir/server"
bt_start_server "$srv"
export BADGE_DATA_DIR=$srv BADGE_CONFIG_DIR="$dir/cfg"
b() { "$BADGE_BIN" "$@"; }
c() { curl -sS --cacert "$BADGE_CA_FILE" "$@"; }
admin_token() {
	c -d grant_type=client_credentials -d "client_id=$(jq -r .clientId "$srv/admin.json")" \
		--data-urlencode "client_secret=$(jq -r .clientSecret "$srv/admin.json")" \
		--data-urlencode "scope=${BADGE_MANAGEMENT_RESOURCE}.default" \
		"$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" | jq -r .access_token
}
gone() { ! b directory principal show --id "$1" >/dev/null 2>&1; }
exists() { b directory principal show --id "$1" >/dev/null 2>&1; }

# metadata (unauthenticated, double slash tolerated) and subscriptions
md=$(c "$BADGE_URL//metadata/endpoints?api-version=2015-01-01")
bt_assert_eq "$(jq -r '.authentication.audiences[0]' <<<"$md")" "$BADGE_MANAGEMENT_RESOURCE" "metadata audience"
tok=$(admin_token)
subs=$(c -H "Authorization: Bearer $tok" "$BADGE_URL/subscriptions?api-version=2019-11-01")
bt_assert_eq "$(jq -r '.value[0].subscriptionId' <<<"$subs")" "$BADGE_SUBSCRIPTION_ID" "subscription id"
bt_assert_eq "$(jq -r '.value[0].state' <<<"$subs")" "Enabled" "subscription state"
bt_assert_eq "$(jq -r '.value[0].tenantId' <<<"$subs")" "$BADGE_TENANT_ID" "subscription tenant"
code=$(c -o /dev/null -w '%{http_code}' "$BADGE_URL/subscriptions?api-version=2019-11-01")
bt_assert_eq "$code" 401 "no token"
c -D "$dir/h" -o /dev/null "$BADGE_URL/subscriptions?api-version=2019-11-01"
grep -qi '^www-authenticate: Bearer authorization_uri=' "$dir/h" || bt_fail "401 without WWW-Authenticate"
err=$(c -H "Authorization: Bearer $tok" "$BADGE_URL/subscriptions?api-version=someday")
bt_assert_eq "$(jq -r .error.code <<<"$err")" InvalidApiVersionParameter "bad api-version"

# groups, identities, a host, an instance with both kinds of identity
b group create -n rg1 >/dev/null
uai=$(b identity create -g rg1 -n id1)
uai_oid=$(jq -r .properties.principalId <<<"$uai")
uai_id=$(jq -r .id <<<"$uai")
exists "$uai_oid" || bt_fail "identity principal missing"
host=$(b host create -n h1)
[[ $(jq -r .joinToken <<<"$host") != null ]] || bt_fail "no join token"
vm=$(b vm create -g rg1 -n vm1 --assign-identity '[system]' id1)
vm_oid=$(jq -r .identity.principalId <<<"$vm")
bt_assert_eq "$(jq -r .identity.type <<<"$vm")" "SystemAssigned, UserAssigned" "vm identity type"
[[ $(jq -r .properties.hostId <<<"$vm") == */Badge.Compute/hosts/h1 ]] || bt_fail "not placed on the only host"
exists "$vm_oid" || bt_fail "vm principal missing"
b host show -n h1 | jq -e '.properties.instances | length == 1' >/dev/null || bt_fail "host does not list its instance"

# a credential on the system-assigned identity works until the instance goes
sec=$(b directory credential add-secret --id "$vm_oid" | jq -r '.secretText // .secret // .clientSecret // empty')
app=$(b directory principal show --id "$vm_oid" | jq -r '.appId // .clientId')
try_token() {
	c -o /dev/null -w '%{http_code}' -d grant_type=client_credentials -d "client_id=$app" \
		--data-urlencode "client_secret=$sec" --data-urlencode "scope=${BADGE_MANAGEMENT_RESOURCE}.default" \
		"$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token"
}
if [[ -n "$sec" ]]; then bt_assert_eq "$(try_token)" 200 "token for the live identity"; fi

# deleting the user-assigned identity removes it from the instance and deletes its principal
b identity delete -g rg1 -n id1 >/dev/null
gone "$uai_oid" || bt_fail "identity principal survived its resource"
bt_assert_eq "$(b vm show -g rg1 -n vm1 | jq -r .identity.type)" SystemAssigned "identity left the instance"
b vm show -g rg1 -n vm1 | jq -e '.identity.userAssignedIdentities == null' >/dev/null || bt_fail "dangling reference"

# assigning a missing identity or one of another subscription fails and changes nothing
if b vm identity assign -g rg1 -n vm1 --identities "$uai_id" 2>"$dir/e"; then bt_fail "assigned a deleted identity"; fi
grep -q FailedIdentityOperation "$dir/e" || bt_fail "error should name the identity failure: $(cat "$dir/e")"
other="/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/x/providers/Microsoft.ManagedIdentity/userAssignedIdentities/y"
if b vm identity assign -g rg1 -n vm1 --identities "$other" 2>"$dir/e"; then bt_fail "assigned a foreign identity"; fi
bt_assert_eq "$(b vm show -g rg1 -n vm1 | jq -r .identity.principalId)" "$vm_oid" "instance unchanged"

# deleting the instance deletes its principal; its credential stops working
b vm delete -g rg1 -n vm1 >/dev/null
gone "$vm_oid" || bt_fail "instance principal survived the instance"
if [[ -n "$sec" ]]; then [[ $(try_token) != 200 ]] || bt_fail "a deleted identity still gets tokens"; fi

# two concurrent PUTs of one instance leave exactly one principal behind
url="$BADGE_URL/subscriptions/$BADGE_SUBSCRIPTION_ID/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/race?api-version=2023-03-01"
pids=()
for i in 1 2 3 4; do
	c -X PUT -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		-d '{"location":"local","identity":{"type":"SystemAssigned"}}' -o "$dir/race$i" "$url" &
	pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the server is a child of this shell too
race_oid=$(c -H "Authorization: Bearer $tok" "$url" | jq -r .identity.principalId)
exists "$race_oid" || bt_fail "race left no principal"
n=$(b directory principal list --type ManagedIdentity | jq '[.. | objects | select((.alternativeNames? // []) | map(test("virtualMachines/race$")) | any)] | length')
bt_assert_eq "$n" 1 "principals of the raced instance"

# vaults and access policies
b keyvault create -g rg1 -n kv1 >/dev/null
kv=$(b keyvault set-policy -n kv1 --object-id "$race_oid" --secret-permissions get list)
jq -e --arg o "$race_oid" '.properties.accessPolicies[] | select(.objectId == $o) | .permissions.secrets | index("get")' \
	<<<"$kv" >/dev/null || bt_fail "policy not set"
[[ $(jq -r .properties.vaultUri <<<"$kv") == "https://kv1.$BADGE_VAULT_SUFFIX:$BADGE_PORT/" ]] || bt_fail "vaultUri"
# set-policy merges as az does: the categories given replace theirs, the others stay
kv=$(b keyvault set-policy -n kv1 --object-id "$race_oid" --key-permissions get wrapKey)
pol() { jq -c --arg o "$race_oid" ".properties.accessPolicies | map(select(.objectId == \$o)) | .[0].permissions.$1 // [] | sort" <<<"$kv"; }
bt_assert_eq "$(pol secrets)" '["get","list"]' "set-policy --key-permissions kept the secret permissions"
bt_assert_eq "$(pol keys)" '["get","wrapKey"]' "set-policy --key-permissions"
kv=$(b keyvault set-policy -n kv1 --object-id "$race_oid" --secret-permissions set)
bt_assert_eq "$(pol secrets)" '["set"]' "set-policy --secret-permissions replaces that category"
bt_assert_eq "$(pol keys)" '["get","wrapKey"]' "set-policy --secret-permissions kept the key permissions"
bt_assert_eq "$(jq --arg o "$race_oid" '[.properties.accessPolicies[] | select(.objectId == $o)] | length' <<<"$kv")" 1 \
	"one policy entry per object"
if b keyvault set-policy -n kv1 --object-id "$race_oid" 2>/dev/null; then
	bt_fail "set-policy without permissions was accepted"
fi
b keyvault delete-policy -n kv1 --object-id "$race_oid" | jq -e '.properties.accessPolicies | length == 0' >/dev/null ||
	bt_fail "policy not removed"
if b keyvault set-policy -n kv1 --object-id "$race_oid" --secret-permissions fly 2>/dev/null; then
	bt_fail "an unknown permission was accepted"
fi

# role assignments
b role assignment create --assignee-object-id "$race_oid" --role "Key Vault Secrets User" \
	--scope "$(b keyvault show -n kv1 | jq -r .id)" >/dev/null
b role assignment list --assignee "$race_oid" | jq -e '.value | length == 1' >/dev/null || bt_fail "assignment not listed"

# deleting the group deletes everything in it, principals included
b group delete -n rg1 >/dev/null
gone "$race_oid" || bt_fail "group deletion left a principal"
if b group show -n rg1 2>/dev/null; then bt_fail "group still there"; fi
b host delete -n h1 >/dev/null
echo "ok 30-manager-lifecycle"
