#!/usr/bin/env bash
# Two `badge server` replicas on one PostgreSQL database behave as one: the second joins with
# --join-from (same CA, master key, administrator); a token issued by one is accepted by the
# vault on the other; a signing-key rotation on one is seen by the other (published keys within
# the bound, an activated key before it is ever refused); cache invalidation across replicas
# (a removed access policy, a deleted principal) within BOUND seconds (docs/operations.md);
# instance lifecycle races across replicas leave no orphan or duplicate principal; kill -9 of one replica under write load while clients retry on the other loses no
# acknowledged write. PostgreSQL only (pg/integration/60-replicas).
source "$BADGE_SRC/tests/lib.sh"
bt_pg_require
BOUND=3 # seconds; NOTIFY delivers in milliseconds, the bound leaves room for a loaded machine
db=$(bt_pg_newdb)
dir=$(bt_tmpdir)
A="$dir/a" B="$dir/b"
# Behind a load balancer replicas share the public port; here it is a name only (never bound).
bt_start_server "$A" --store "$db" --public-port 443
PA=$BT_SERVER_PID UA=$BADGE_URL
bt_start_server "$B" --store "$db" --public-port 443 --join-from "$A"
PB=$BT_SERVER_PID UB=$BADGE_URL
cmp -s "$A/ca.pem" "$B/ca.pem" && cmp -s "$A/master.key" "$B/master.key" || bt_fail "join did not copy the CA and key"
cmp -s "$A/admin.json" "$B/admin.json" || bt_fail "join did not copy admin.json"
[[ $(stat -c %a "$B/master.key") == 600 ]] || bt_fail "master.key mode on the joined replica"
# a data dir of another installation refuses to join
mkdir -p "$dir/c" && echo other >"$dir/c/master.key" && chmod 600 "$dir/c/master.key"
if "$BADGE_BIN" server --data-dir "$dir/c" --listen 127.0.0.1:0 --store "$db" --join-from "$A" 2>"$dir/err"; then
	bt_fail "joined over a different master key"
fi
grep -q "another installation" "$dir/err" || bt_fail "join refusal: $(cat "$dir/err")"

c() { curl -sS --cacert "$BADGE_CA_FILE" "$@"; }
code() { c -o "$dir/body" -w '%{http_code}' "$@"; }
admin_id=$(jq -r .clientId "$A/admin.json")
admin_secret=$(jq -r .clientSecret "$A/admin.json")
token() { # URL CLIENT SECRET RESOURCE
	c -d grant_type=client_credentials -d client_id="$2" --data-urlencode client_secret="$3" \
		--data-urlencode scope="$4/.default" "$1/$BADGE_TENANT_ID/oauth2/v2.0/token" | jq -r .access_token
}
claim() { /usr/bin/python3 -c 'import sys,json,base64; p=sys.argv[1].split(".")[int(sys.argv[3])]; print(json.loads(base64.urlsafe_b64decode(p+"=="*2))[sys.argv[2]])' "$1" "$2" "${3:-1}"; }
mtok=$(token "$UA" "$admin_id" "$admin_secret" "$BADGE_MANAGEMENT_RESOURCE")
[[ -n "$mtok" && "$mtok" != null ]] || bt_fail "no management token"
admin_oid=$(claim "$mtok" oid)
sub=$BADGE_SUBSCRIPTION_ID
arm() { code -X PUT -H "Authorization: Bearer $mtok" -H 'Content-Type: application/json' "$@"; }
st=$(arm -d '{"location":"local"}' "$UB/subscriptions/$sub/resourcegroups/rg1?api-version=2021-04-01")
[[ $st == 200 || $st == 201 ]] || bt_fail "resource group on B with A's token: $st $(cat "$dir/body")"
st=$(arm -d "{\"location\":\"local\",\"properties\":{\"tenantId\":\"$BADGE_TENANT_ID\",\"sku\":{\"family\":\"A\",\"name\":\"standard\"},
	\"accessPolicies\":[{\"tenantId\":\"$BADGE_TENANT_ID\",\"objectId\":\"$admin_oid\",\"permissions\":{\"secrets\":[\"all\"]}}]}}" \
	"$UA/subscriptions/$sub/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1?api-version=2023-07-01")
[[ $st == 200 || $st == 201 ]] || bt_fail "vault: $st $(cat "$dir/body")"

put() { code -X PUT -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d "{\"value\":\"$4\"}" \
	"$1/vaults/kv1/secrets/$3?api-version=7.4"; }
get() { code -H "Authorization: Bearer $2" "$1/vaults/kv1/secrets/$3?api-version=7.4"; }

# 1. a token issued by A is accepted by the vault on B, and the other way round
vA=$(token "$UA" "$admin_id" "$admin_secret" "$BADGE_VAULT_RESOURCE")
vB=$(token "$UB" "$admin_id" "$admin_secret" "$BADGE_VAULT_RESOURCE")
bt_assert_eq "$(put "$UB" "$vA" s1 from-a)" 200 "A's token on B's vault"
bt_assert_eq "$(get "$UA" "$vB" s1)" 200 "B's token on A's vault"
bt_assert_eq "$(jq -r .value "$dir/body")" from-a "value across replicas"

# 2. key rotation on A: a published key shows in B's JWKS within the bound; an activated one
# signs on A at once and A's tokens are accepted by B before B was told anything else
jwks_has() { c "$1/$BADGE_TENANT_ID/discovery/v2.0/keys" | jq -e --arg k "$2" 'any(.keys[]; .kid == $k)' >/dev/null; }
within() { # SECONDS CMD...: polls CMD; fails beyond SECONDS
	local limit=$1 t0=$EPOCHREALTIME
	shift
	BT_WAIT_TIMEOUT=$((limit + 30)) bt_wait_for "$@"
	local ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
	((ms <= limit * 1000)) || bt_fail "took ${ms} ms (bound ${limit}s): $*"
	echo "  $* : ${ms} ms"
}
old_kid=$(claim "$vA" kid 0)
new_kid=$(BADGE_DATA_DIR=$A "$BADGE_BIN" directory rotate-keys | jq -r .newKid)
[[ -n "$new_kid" && "$new_kid" != null && "$new_kid" != "$old_kid" ]] || bt_fail "rotate-keys gave no new kid"
within $BOUND jwks_has "$UB" "$new_kid"
bt_assert_eq "$(claim "$(token "$UB" "$admin_id" "$admin_secret" "$BADGE_VAULT_RESOURCE")" kid 0)" "$old_kid" \
	"a pre-published key does not sign yet"
act_kid=$(BADGE_DATA_DIR=$A "$BADGE_BIN" directory rotate-keys --activate | jq -r .newKid)
vA2=$(token "$UA" "$admin_id" "$admin_secret" "$BADGE_VAULT_RESOURCE")
bt_assert_eq "$(claim "$vA2" kid 0)" "$act_kid" "A signs with the activated key"
bt_assert_eq "$(get "$UB" "$vA2" s1)" 200 "B accepts a token signed by the key activated on A"
signs_new() { [[ $(claim "$(token "$UB" "$admin_id" "$admin_secret" "$BADGE_VAULT_RESOURCE")" kid 0) == "$act_kid" ]]; }
within $BOUND signs_new
bt_assert_eq "$(get "$UA" "$vB" s1)" 200 "tokens of the previous key stay valid"

# 3. cache invalidation across replicas: an application with access, its token cached on B
app=$(BADGE_DATA_DIR=$A "$BADGE_BIN" directory principal create --display-name replica-app)
app_id=$(jq -r .appId <<<"$app") app_oid=$(jq -r .objectId <<<"$app")
app_secret=$(BADGE_DATA_DIR=$B "$BADGE_BIN" directory credential add-secret --id "$app_id" | jq -r .secretText)
BADGE_DATA_DIR=$B "$BADGE_BIN" keyvault set-policy -n kv1 --object-id "$app_oid" --secret-permissions get list >/dev/null ||
	bt_fail "set-policy"
tapp=$(token "$UA" "$app_id" "$app_secret" "$BADGE_VAULT_RESOURCE")
allowed() { [[ $(get "$UB" "$tapp" s1) == 200 ]]; }
within $BOUND allowed # the policy set on B; B's caches now hold the token and the policy
refused() { [[ $(get "$UB" "$tapp" s1) == "$1" ]]; }
BADGE_DATA_DIR=$A "$BADGE_BIN" keyvault delete-policy -n kv1 --object-id "$app_oid" >/dev/null || bt_fail "delete-policy"
within $BOUND refused 403
BADGE_DATA_DIR=$A "$BADGE_BIN" keyvault set-policy -n kv1 --object-id "$app_oid" --secret-permissions get >/dev/null
within $BOUND allowed
BADGE_DATA_DIR=$A "$BADGE_BIN" directory principal delete --id "$app_id" >/dev/null || bt_fail "principal delete"
within $BOUND refused 401

# 4. lifecycle races across replicas: concurrent creates of one instance on A and B, then a
# delete on A racing an update on B; no orphan or duplicate principal either way
mi_count() { # NAME: managed-identity principals whose alternative names point at instance NAME
	BADGE_DATA_DIR=$A "$BADGE_BIN" directory principal list --type ManagedIdentity |
		jq --arg n "virtualMachines/$1\$" '[.. | objects | select((.alternativeNames? // []) | map(test($n)) | any)] | length'
}
vm_url() { echo "$1/subscriptions/$sub/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/$2?api-version=2023-03-01"; }
vm_put() { c -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $mtok" -H 'Content-Type: application/json' \
	-d "{\"location\":\"local\",\"tags\":{\"n\":\"$3\"},\"identity\":{\"type\":\"SystemAssigned\"}}" "$(vm_url "$1" "$2")"; }
for r in 1 2 3; do
	pids=()
	vm_put "$UA" "race$r" a >/dev/null &
	pids+=($!)
	vm_put "$UB" "race$r" b >/dev/null &
	pids+=($!)
	wait "${pids[@]}"
	bt_assert_eq "$(mi_count "race$r")" 1 "principals after concurrent creates of race$r on two replicas"
	pids=()
	c -o /dev/null -X DELETE -H "Authorization: Bearer $mtok" "$(vm_url "$UA" "race$r")" &
	pids+=($!)
	vm_put "$UB" "race$r" c >/dev/null &
	pids+=($!)
	wait "${pids[@]}"
	st=$(code -H "Authorization: Bearer $mtok" "$(vm_url "$UB" "race$r")")
	if [[ $st == 200 ]]; then
		bt_assert_eq "$(mi_count "race$r")" 1 "principals of race$r (update won)"
		BADGE_DATA_DIR=$A "$BADGE_BIN" directory principal show --id "$(jq -r .identity.principalId "$dir/body")" \
			>/dev/null || bt_fail "race$r points at a missing principal"
	else
		bt_assert_eq "$st" 404 "race$r after delete/update"
		bt_assert_eq "$(mi_count "race$r")" 0 "orphan principal of deleted race$r"
	fi
done

# 5. kill -9 of A under write load; writers retry on B; every acknowledged write is readable
writer() { # PREFIX N: writes PREFIX-i, A first, B when A fails; logs acknowledged names
	local i st
	for ((i = 0; i < $2; i++)); do
		for u in "$UA" "$UB" "$UB" "$UB"; do
			st=$(curl -sS --cacert "$BADGE_CA_FILE" -o /dev/null -w '%{http_code}' -m 10 -X PUT \
				-H "Authorization: Bearer $vA2" -H 'Content-Type: application/json' \
				-d "{\"value\":\"v-$1-$i\"}" "$u/vaults/kv1/secrets/$1-$i?api-version=7.4" 2>/dev/null) || st=000
			if [[ $st == 200 ]]; then
				echo "$1-$i" >>"$dir/acked-$1"
				break
			fi
		done
	done
}
: >"$dir/acked-w1"
: >"$dir/acked-w2"
writer w1 80 &
W1=$!
writer w2 80 &
W2=$!
bt_cleanup bash -c "kill $W1 $W2 2>/dev/null; true"
acked() { (($(cat "$dir"/acked-w* | wc -l) >= 30)); }
bt_wait_for acked
kill -9 "$PA"
wait "$PA" 2>/dev/null || true
wait "$W1" "$W2"
n=0
while read -r name; do
	st=$(get "$UB" "$vA2" "$name")
	[[ $st == 200 && $(jq -r .value "$dir/body") == "v-$name" ]] || bt_fail "acknowledged write $name lost ($st)"
	n=$((n + 1))
done < <(cat "$dir"/acked-w*)
((n == 160)) || bt_fail "only $n of 160 writes acknowledged (retries on B should finish every one)"
echo "ok 60-replicas ($n acknowledged writes readable after kill -9 of one replica)"
