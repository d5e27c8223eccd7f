#!/usr/bin/env bash
# The vault against a running server over HTTPS: the 401 challenge on the wire, `badge keyvault
# secret|key|audit` end to end (path-style), encryption at rest (the database files never hold a
# secret's value), durability of an acknowledged write and of the audit trail across kill -9.
source "$BADGE_SRC/tests/lib.sh"
dir=$(bt_tmpdir)
srv="$dir/server"
bt_start_server "$srv"
export BADGE_DATA_DIR=$srv

bt_admin_api "$srv" "$dir/body"
bt_admin_vault kv1 '{"secrets":["all"],"keys":["all"]}'
oid=$BT_OID

# the challenge, exactly, before any body is read (a PUT without token and without body)
hdrs=$(c -D - -o "$dir/body" -X PUT -H 'Content-Type: application/json' -H 'Content-Length: 0' \
	"$BADGE_URL/vaults/kv1/secrets/s1?api%2Dversion=2025-07-01")
grep -q '^HTTP/[0-9.]* 401' <<<"$hdrs" || bt_fail "no 401: $hdrs"
want="WWW-Authenticate: Bearer authorization=\"$BADGE_LOGIN_URL/$BADGE_TENANT_ID\", resource=\"$BADGE_VAULT_RESOURCE\""
grep -qiF "$want" <<<"$(tr -d '\r' <<<"$hdrs")" || bt_fail "challenge header: $hdrs"
bt_assert_eq "$(jq -r .error.message "$dir/body")" "AKV10000: Request is missing a Bearer or PoP token." "401 body"

kv() { "$BADGE_BIN" keyvault "$@" --vault-name kv1; }
marker="at-rest-marker-$RANDOM-$RANDOM-$RANDOM"
out=$(kv secret set --name db-password --value "$marker" --tags env=test --content-type text/plain)
bt_assert_eq "$(jq -r .value <<<"$out")" "$marker" "set value"
id=$(jq -r .id <<<"$out")
[[ $id == "https://kv1.$BADGE_VAULT_SUFFIX:$BADGE_PORT/secrets/db-password/"* ]] || bt_fail "id $id"
bt_assert_eq "$(kv secret show --name db-password | jq -r .value)" "$marker" "show"
bt_assert_eq "$(kv secret show --name db-password --version "${id##*/}" | jq -r .tags.env)" test "show by version"
for i in 1 2 3; do kv secret set --name "page-$i" --value "p$i" >/dev/null; done
bt_assert_eq "$(kv secret list | jq length)" 4 "list"

# the value is nowhere in the database files (db, -wal, -shm)
for f in "$srv"/badge.db*; do
	if grep -qa "$marker" "$f"; then bt_fail "secret value found in $f"; fi
done
[[ $(stat -c %a "$srv"/*.key 2>/dev/null | sort -u | tr '\n' ' ') == "600 " ]] || ls -l "$srv" >&2

# delete / deleted / recover / backup / purge / restore
kv secret delete --name page-1 | jq -e '.recoveryId | endswith("/deletedsecrets/page-1")' >/dev/null || bt_fail "delete"
if kv secret show --name page-1 2>"$dir/err"; then bt_fail "a deleted secret is still readable"; fi
grep -q SecretNotFound "$dir/err" || bt_fail "deleted secret error: $(cat "$dir/err")"
kv secret show-deleted --name page-1 >/dev/null || bt_fail "show-deleted"
kv secret recover --name page-1 >/dev/null || bt_fail "recover"
bt_assert_eq "$(kv secret show --name page-1 | jq -r .value)" p1 "recovered"
kv secret backup --name page-1 --file "$dir/page-1.bak"
kv secret delete --name page-1 >/dev/null
kv secret purge --name page-1 2>/dev/null
kv secret restore --file "$dir/page-1.bak" >/dev/null || bt_fail "restore"
bt_assert_eq "$(kv secret show --name page-1 | jq -r .value)" p1 "restored"

# bad input changes nothing
if kv secret set --name bad_name --value x 2>"$dir/err"; then bt_fail "bad name accepted"; fi
grep -q BadParameter "$dir/err" || bt_fail "bad name error: $(cat "$dir/err")"

# keys: create, sign and verify, encrypt and decrypt
kv key create --name rsa1 --kty RSA --size 2048 | jq -e '.key.kty == "RSA" and (.key.d == null)' >/dev/null ||
	bt_fail "key create"
digest=$(printf hello | openssl dgst -sha256 -binary | basenc --base64url | tr -d '=')
sig=$(kv key sign --name rsa1 --alg RS256 --digest "$digest" | jq -r .value)
kv key verify --name rsa1 --alg RS256 --digest "$digest" --signature "$sig" | jq -e '.value == true' >/dev/null ||
	bt_fail "verify"
pt=$(printf 'wrap me' | basenc --base64url | tr -d '=')
ct=$(kv key encrypt --name rsa1 --alg RSA-OAEP-256 --value "$pt" | jq -r .value)
bt_assert_eq "$(kv key decrypt --name rsa1 --alg RSA-OAEP-256 --value "$ct" | jq -r .value)" "$pt" "decrypt"

# an acknowledged write and the audit trail survive kill -9
kv secret set --name after-crash --value durable >/dev/null
kill -9 "$BT_SERVER_PID"
wait "$BT_SERVER_PID" 2>/dev/null || true
bt_start_server "$srv"
bt_assert_eq "$(kv secret show --name after-crash | jq -r .value)" durable "after kill -9"
"$BADGE_BIN" keyvault audit --vault-name kv1 --data-dir "$srv" >"$dir/audit"
grep -q '"operation":"SecretSet"' "$dir/audit" || bt_fail "no SecretSet in the audit trail"
grep -q '"operation":"SecretGet"' "$dir/audit" || bt_fail "no SecretGet in the audit trail"
grep -q '"operation":"KeySign"' "$dir/audit" || bt_fail "no KeySign in the audit trail"
grep -q "\"oid\":\"$oid\"" "$dir/audit" || bt_fail "the audit trail lacks the caller"
if grep -q "$marker\|durable" "$dir/audit"; then bt_fail "a value in the audit trail"; fi
echo "ok 50-vault-cli"
