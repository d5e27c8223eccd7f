#!/usr/bin/env bash
# libbadge in the netns flavour (root): the seed scenario of 51 with a C application. libbadge is
# installed into a temporary prefix and examples/read-secret is built against it with
# pkg-config; inside the instance (its own network namespace, IMDS at 169.254.169.254 as on
# Azure, no endpoint override, host-style vault URL, challenge verification on) it reads the
# secret the operator stored, with no credential in its code, configuration or environment.
# `badge token` inside gets the instance's token from IMDS. The Key Vault driver runs the npm
# tests' secret and key operations host-style from inside the instance with a client secret.
# Removing the policy makes the next read 403.
source "${BADGE_SRC:?}/tests/lib.sh"

command -v pkg-config >/dev/null || bt_fail "pkg-config is required"

source "$BADGE_SRC/tests/topology.sh"
bt_topo_begin 71

chmod 755 "$work" "$(dirname "$work")"
prefix="$work/prefix"
cmake --install "$BADGE_BUILD" --prefix "$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; bt_fail "cmake --install"; }
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cp "$BADGE_SRC/examples/read-secret.c" "$BADGE_SRC/examples/Makefile" "$work/"
make -s -C "$work" >"$work/make.log" 2>&1 || { cat "$work/make.log"; bt_fail "building the example with pkg-config"; }
cc -Wall -Wextra -o "$work/kvdriver" "$BADGE_SRC/tests/integration/libbadge_kv_driver.c" \
	$(pkg-config --cflags --libs badge libcrypto jansson) -Wl,-rpath,"$prefix/lib" || bt_fail "building the driver"
bt_topo_server

# host, agent, instance with a system-assigned identity, vault with policies, the secret
bt_topo_seed rg71 10.243.0.0 '{"secrets":["all"],"keys":["all"]}'

# inside the instance: read-secret, nothing but the CA in its environment
VAULT_URL="https://seedkv.$BADGE_VAULT_SUFFIX:$BADGE_PORT"
vm() { in_vm env -i PATH="$PATH" SSL_CERT_FILE="$CA" "$@"; }
out=$(vm "$work/read-secret" "$VAULT_URL" db-password) || bt_fail "read-secret inside the instance: $out"
bt_assert_eq "$out" "s3cr3t-seed" "read-secret inside the instance (IMDS, challenge verified)"

# badge token from IMDS
t=$(vm "$BADGE_BIN" token --resource "$BADGE_VAULT_RESOURCE" --raw) || bt_fail "badge token: $t"
oid=$(cut -d. -f2 <<<"$t" | tr '_-' '/+' | { read -r s; while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; } | jq -r .oid)
bt_assert_eq "$oid" "$OID" "badge token inside the instance"
bt_assert_eq "$(vm "$BADGE_BIN" token --resource "$BADGE_VAULT_RESOURCE" | jq -r .source)" imds "token source"

# the Key Vault driver, host-style with verification on, as the operator's service principal
out=$(vm AUTHORITY="$BADGE_LOGIN_URL" TENANT="$TENANT" CLIENT_ID="$(jq -r .clientId "$S/admin.json")" \
	CLIENT_SECRET="$(jq -r .clientSecret "$S/admin.json")" timeout 300 "$work/kvdriver" "$VAULT_URL") ||
	bt_fail "libbadge Key Vault driver in the instance: $out"
grep -q '^PASS' <<<"$out" || bt_fail "driver: $out"
echo "$out" | tail -1

# removing the policy: the next read is 403
mgmt PUT "$KV/accessPolicies/remove?api-version=2023-07-01" "{\"properties\":{\"accessPolicies\":[
	{\"tenantId\":\"$TENANT\",\"objectId\":\"$OID\",\"permissions\":{\"secrets\":[\"get\",\"list\"]}}]}}" >/dev/null
if out=$(vm "$work/read-secret" "$VAULT_URL" db-password 2>&1); then bt_fail "read after the policy was removed: $out"; fi
grep -q BADGE_E_FORBIDDEN <<<"$out" || bt_fail "after policy removal: $out"
echo "PASS 71-libbadge-netns"
