#!/usr/bin/env bash
# Master-key rotation (badge server rotate-master-key, src/cli/masterkey.c): refused while the
# server runs; a rotation interrupted before and after its commit is finished by running the
# command again (and the server refuses to start in between); afterwards master.key is new and
# 0600, the secret reads back, the key signs, a token issued before still verifies, the JWKS is
# unchanged, a vault backup blob made before the rotations restores, and the old master key opens nothing (a server with it fails to start). The public
# port is fixed (the listener is on port 0) so that issuer and audiences survive the restarts.
source "$BADGE_SRC/tests/lib.sh"
dir=$(bt_tmpdir)
srv="$dir/server"
bt_start_server "$srv" --public-port 8443
export BADGE_DATA_DIR=$srv

bt_admin_api "$srv" "$dir/body"
bt_admin_vault kv1 '{"secrets":["all"],"keys":["all"]}'
mtok=$BT_MTOK sub=$BADGE_SUBSCRIPTION_ID admin_id=$BT_ADMIN_ID admin_secret=$BT_ADMIN_SECRET

kv() { "$BADGE_BIN" keyvault "$@" --vault-name kv1; }
marker="rotate-marker-$RANDOM-$RANDOM"
kv secret set --name s1 --value "$marker" >/dev/null
kv key create --name rsa1 --kty RSA --size 2048 >/dev/null
# a backup blob made before any rotation must still restore after them
kv secret backup --name s1 --file "$dir/s1.backup" >/dev/null
digest=$(printf hello | openssl dgst -sha256 -binary | basenc --base64url | tr -d '=')
jwks() { c "$BADGE_URL/$BADGE_TENANT_ID/discovery/v2.0/keys" | jq -S '.keys | sort_by(.kid)'; }
jwks_before=$(jwks)
[[ $(jq length <<<"$jwks_before") -ge 1 ]] || bt_fail "empty JWKS"

# everything a restarted server must still do
check_all() {
	bt_assert_eq "$(kv secret show --name s1 | jq -r .value)" "$marker" "secret after rotation ($1)"
	local sig
	sig=$(kv key sign --name rsa1 --alg RS256 --digest "$digest" | jq -r .value)
	kv key verify --name rsa1 --alg RS256 --digest "$digest" --signature "$sig" | jq -e '.value == true' >/dev/null ||
		bt_fail "key does not sign after rotation ($1)"
	st=$(code -H "Authorization: Bearer $mtok" "$BADGE_URL/subscriptions/$sub/resourcegroups/rg1?api-version=2021-04-01")
	bt_assert_eq "$st" 200 "a token issued before the rotation ($1): $(cat "$dir/body")"
	bt_assert_eq "$(jwks)" "$jwks_before" "JWKS after rotation ($1)"
	# new tokens are signed (with the same key) and verify
	local t2
	t2=$(c -d grant_type=client_credentials -d client_id="$admin_id" --data-urlencode client_secret="$admin_secret" \
		--data-urlencode scope="$BADGE_MANAGEMENT_RESOURCE/.default" "$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" |
		jq -r .access_token)
	st=$(code -H "Authorization: Bearer $t2" "$BADGE_URL/subscriptions/$sub/resourcegroups/rg1?api-version=2021-04-01")
	bt_assert_eq "$st" 200 "a new token ($1)"
}
rotate() { "$BADGE_BIN" server rotate-master-key --data-dir "$srv" "$@"; }

# refused while the server runs; nothing changes
cp "$srv/master.key" "$dir/key0"
if rotate >"$dir/out" 2>"$dir/err"; then bt_fail "rotation ran beside a running server"; fi
grep -q "server is running" "$dir/err" || bt_fail "refusal message: $(cat "$dir/err")"
cmp -s "$srv/master.key" "$dir/key0" || bt_fail "a refused rotation changed master.key"
[[ ! -e "$srv/master.key.new" ]] || bt_fail "a refused rotation left master.key.new"

bt_stop "$BT_SERVER_PID"

# 1. dies after writing master.key.new (the database is still under the old key)
st=0
BADGE_TEST_ROTATE_DIE=after-new rotate >"$dir/out" 2>"$dir/err" || st=$?
bt_assert_eq "$st" 86 "test death after-new: $(cat "$dir/err")"
[[ -s "$srv/master.key.new" ]] || bt_fail "no master.key.new"
if "$BADGE_BIN" server --data-dir "$srv" --listen 127.0.0.1:0 >"$dir/refused.log" 2>&1; then
	bt_fail "the server started during an unfinished rotation"
fi
grep -q "master.key.new exists" "$dir/refused.log" || bt_fail "server refusal: $(cat "$dir/refused.log")"
cp "$srv/master.key.new" "$dir/key1"
rotate >"$dir/out" 2>"$dir/err" || bt_fail "finishing the rotation: $(cat "$dir/err")"
grep -q "interrupted rotation finished" "$dir/out" || bt_fail "resume output: $(cat "$dir/out")"
# the vault's data key and the installation's backup key
grep -q "2 vault data keys sealed again" "$dir/out" || bt_fail "vault data keys not resealed: $(cat "$dir/out")"
cmp -s "$srv/master.key" "$dir/key1" || bt_fail "master.key is not the interrupted rotation's key"
cmp -s "$srv/master.key" "$dir/key0" && bt_fail "master.key did not change"
bt_assert_eq "$(stat -c %a "$srv/master.key")" 600 "master.key mode"
[[ ! -e "$srv/master.key.new" && ! -e "$srv/master.key.old" ]] || bt_fail "leftover key files: $(ls "$srv")"
bt_start_server "$srv" --public-port 8443
check_all "resumed before commit"
bt_stop "$BT_SERVER_PID"

# 2. dies after the commit: only master.key.new opens the database now
st=0
BADGE_TEST_ROTATE_DIE=after-commit rotate >"$dir/out" 2>"$dir/err" || st=$?
bt_assert_eq "$st" 86 "test death after-commit: $(cat "$dir/err")"
cp "$srv/master.key.new" "$dir/key2"
if "$BADGE_BIN" server --data-dir "$srv" --listen 127.0.0.1:0 >"$dir/refused.log" 2>&1; then
	bt_fail "the server started during an unfinished rotation"
fi
rotate >"$dir/out" 2>"$dir/err" || bt_fail "finishing the committed rotation: $(cat "$dir/err")"
grep -q "0 signing keys and 0 vault data keys sealed again" "$dir/out" || bt_fail "re-run resealed: $(cat "$dir/out")"
cmp -s "$srv/master.key" "$dir/key2" || bt_fail "master.key is not the committed rotation's key"
bt_assert_eq "$(stat -c %a "$srv/master.key")" 600 "master.key mode"

# 3. dies between keeping master.key.old and the rename; then a plain rotation
st=0
BADGE_TEST_ROTATE_DIE=after-link rotate >"$dir/out" 2>"$dir/err" || st=$?
bt_assert_eq "$st" 86 "test death after-link: $(cat "$dir/err")"
rotate >"$dir/out" 2>"$dir/err" || bt_fail "finishing after link: $(cat "$dir/err")"
cp "$srv/master.key" "$dir/key3"
rotate >"$dir/out" 2>"$dir/err" || bt_fail "plain rotation: $(cat "$dir/err")"
grep -q "sealed again (0 and 0 were" "$dir/out" || bt_fail "plain rotation output: $(cat "$dir/out")"
cmp -s "$srv/master.key" "$dir/key3" && bt_fail "master.key did not change"
bt_assert_eq "$(stat -c %a "$srv/master.key")" 600 "master.key mode"
[[ ! -e "$srv/master.key.new" && ! -e "$srv/master.key.old" ]] || bt_fail "leftover key files: $(ls "$srv")"

bt_start_server "$srv" --public-port 8443
check_all "after three rotations"
# the pre-rotation backup restores (once the secret is deleted and purged, as Key Vault requires)
kv secret delete --name s1 >/dev/null
kv secret purge --name s1 >/dev/null
kv secret restore --file "$dir/s1.backup" >/dev/null || bt_fail "a backup made before the rotations does not restore"
bt_assert_eq "$(kv secret show --name s1 | jq -r .value)" "$marker" "secret restored from a pre-rotation backup"
bt_stop "$BT_SERVER_PID"

# the old keys open nothing: a server given one fails to start, clearly
cp "$srv/master.key" "$dir/current"
for k in key0 key1 key2 key3; do
	install -m 0600 "$dir/$k" "$srv/master.key"
	st=0
	timeout 60 "$BADGE_BIN" server --data-dir "$srv" --listen 127.0.0.1:0 >"$dir/old.log" 2>&1 || st=$?
	((st != 0 && st != 124)) || bt_fail "a server started with the old master key $k (status $st)"
	grep -q "does not authenticate" "$dir/old.log" || bt_fail "old key $k: $(cat "$dir/old.log")"
done
install -m 0600 "$dir/current" "$srv/master.key"
bt_start_server "$srv" --public-port 8443
bt_assert_eq "$(kv secret show --name s1 | jq -r .value)" "$marker" "secret with the current key"
echo "ok 64-master-key"
