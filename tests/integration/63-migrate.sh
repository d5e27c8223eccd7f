#!/usr/bin/env bash
# badge migrate --from sqlite:PATH --to postgres://...: an installation with principals,
# credentials, signing keys, resources, identities, a vault with secret versions, a
# soft-deleted secret, a key and an audit trail moves to PostgreSQL; every table's rows are
# identical afterwards, the server runs on the copy with the same data dir (old credentials,
# tokens and values work), and a second migrate into the now non-empty database is refused.
# PostgreSQL only (pg/integration/63-migrate).
source "$BADGE_SRC/tests/lib.sh"
bt_pg_require
dir=$(bt_tmpdir)
srv="$dir/server"
sq="sqlite:$srv/badge.db"
bt_start_server "$srv" --store "$sq" --public-port 443
export BADGE_DATA_DIR=$srv BADGE_CONFIG_DIR="$dir/cfg"
b() { "$BADGE_BIN" "$@"; }
c() { curl -sS --cacert "$BADGE_CA_FILE" "$@"; }
code() { c -o "$dir/body" -w '%{http_code}' "$@"; }
admin_id=$(jq -r .clientId "$srv/admin.json")
admin_oid=$(jq -r .objectId "$srv/admin.json")
token() { # CLIENT SECRET RESOURCE
	c -d grant_type=client_credentials -d client_id="$1" --data-urlencode client_secret="$2" \
		--data-urlencode scope="$3/.default" "$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" | jq -r .access_token
}
b group create -n rg1 >/dev/null
b identity create -g rg1 -n id1 >/dev/null
b keyvault create -g rg1 -n kv1 >/dev/null
b keyvault set-policy -n kv1 --object-id "$admin_oid" --secret-permissions all --key-permissions all >/dev/null
app=$(b directory principal create --display-name moved-app)
app_id=$(jq -r .appId <<<"$app")
app_secret=$(b directory credential add-secret --id "$app_id" | jq -r .secretText)
b directory rotate-keys >/dev/null
kv() { b keyvault "$@" --vault-name kv1; }
kv secret set --name s1 --value one >/dev/null
kv secret set --name s1 --value two >/dev/null
kv secret set --name gone --value bye >/dev/null
kv secret delete --name gone >/dev/null
kv key create --name k1 --kty RSA --size 2048 >/dev/null
audit_before=$(b keyvault audit --vault-name kv1 --store "$sq" | wc -l)
((audit_before > 0)) || bt_fail "no audit records before the move"
bt_stop "$BT_SERVER_PID"

db=$(bt_pg_newdb)
out=$(b migrate --from "$sq" --to "$db") || bt_fail "migrate failed"
jq -e '.status == "migrated" and .tables.vault_versions >= 4 and .tables.dir_principals >= 3' <<<"$out" >/dev/null ||
	bt_fail "migrate output: $out"
if b migrate --from "$sq" --to "$db" 2>"$dir/err"; then bt_fail "migrated twice into one database"; fi
grep -q "already holds a badge schema" "$dir/err" || bt_fail "second migrate: $(cat "$dir/err")"

# every table, row for row (NULL and '' both print empty; values with newlines split alike)
for t in $(jq -r '.tables | keys[]' <<<"$out"); do
	/usr/bin/python3 - "$srv/badge.db" "$t" >"$dir/a" <<'PY'
import sqlite3, sys
for r in sqlite3.connect(sys.argv[1]).execute('SELECT * FROM "%s"' % sys.argv[2]):
    print("\t".join("" if v is None else str(v) for v in r))
PY
	psql -X -A -t -F $'\t' -d "$db" -c "SELECT * FROM \"$t\"" >"$dir/b" || bt_fail "psql $t"
	diff <(sort "$dir/a") <(sort "$dir/b") >/dev/null || bt_fail "table $t differs after migrate"
done

# the server on the copy, same data dir
bt_start_server "$srv" --store "$db" --public-port 443
bt_assert_eq "$(kv secret show --name s1 | jq -r .value)" two "latest version"
bt_assert_eq "$(kv secret list-versions --name s1 | jq length)" 2 "versions"
kv secret show-deleted --name gone | jq -e '.recoveryId | endswith("/deletedsecrets/gone")' >/dev/null ||
	bt_fail "the soft-deleted secret did not move"
kv key show --name k1 | jq -e '.key.kty == "RSA"' >/dev/null || bt_fail "key"
tok=$(token "$app_id" "$app_secret" "$BADGE_VAULT_RESOURCE")
[[ -n "$tok" && "$tok" != null ]] || bt_fail "an application's secret from before the move"
b identity show -g rg1 -n id1 | jq -e '.properties.principalId' >/dev/null || bt_fail "identity"
audit_after=$(b keyvault audit --vault-name kv1 --store "$db" | wc -l)
((audit_after >= audit_before)) || bt_fail "audit records lost: $audit_before before, $audit_after after"
echo "ok 63-migrate"
