#!/usr/bin/env bash
# badge up: server and agent in one process tree, on SQLite, in one data dir.
#  1. root, netns isolation, inside a namespace this test creates: DIR/env appears once both
#     serve; the CLI (after `source DIR/env`) creates an instance with a system-assigned identity,
#     a vault, an access policy and a secret; inside the instance (`badge vm exec`) the vault's
#     name resolves and curl reads the secret with a token from 169.254.169.254 — no credential
#     given to it; TERM stops everything; a restart serves the same instance without re-enrolling.
#  2. the App Service flavour without root: the same as an unprivileged user (setpriv to nobody),
#     the instance reading its secret through IDENTITY_ENDPOINT/IDENTITY_HEADER; and the
#     `--isolation appservice` override as root.
if [[ ${BADGE_TEST_STORE:-} == postgres ]]; then
	echo "SKIP: badge up is the one-machine SQLite installation (the pg/ run has nothing to add)"
	exit 77
fi
source "${BADGE_SRC:?}/tests/lib.sh"
command -v jq >/dev/null || bt_fail "jq is required"

if [[ $(id -u) != 0 ]]; then
	echo "SKIP: needs root (network namespaces; the unprivileged part runs as nobody from root)"
	exit 0
fi

T="t42-$$"
PFX="t42$$-"
ip netns add "$T"
bt_cleanup ip netns del "$T"
bt_cleanup bash -c "rm -rf /etc/netns/${PFX}*; for f in /run/netns/${PFX}*; do [ -e \"\$f\" ] && { umount \"\$f\" 2>/dev/null; rm -f \"\$f\"; }; done; true"
ip -n "$T" link set lo up
inT() { ip netns exec "$T" "$@"; }

# up AS DIR ARGS...: starts `badge up` in T as user AS (root or nobody); sets UPID. With netns
# isolation the server listens on 0.0.0.0 (of T): instances reach it through their veth links.
up() {
	local as=$1 dir=$2
	shift 2
	local run=()
	[[ $as == root ]] || run=(setpriv --reuid "$as" --regid "$(id -gn "$as")" --clear-groups --reset-env)
	ip netns exec "$T" "${run[@]}" "$BADGE_BIN" up --data-dir "$dir" "$@" >>"$dir.log" 2>&1 </dev/null &
	UPID=$!
	bt_cleanup bt_stop "$UPID"
	bt_log "$dir.log"
}
# wait_env DIR: DIR/env appears (server and agent both serving) while the process lives
env_ready() { [[ -f "$1/env" ]] || { kill -0 "$UPID" 2>/dev/null || bt_fail "badge up exited early"; return 1; }; }

# seed AS DIR FLAVOUR: the seed scenario through the CLI, as user AS; prints the secret read inside
seed() {
	local as=$1 dir=$2 flavour=$3
	local run=(inT)
	[[ $as == root ]] || run=(inT setpriv --reuid "$as" --regid "$(id -gn "$as")" --clear-groups --reset-env)
	"${run[@]}" bash -s "$BADGE_BIN" "$dir" "$flavour" <<'SEED'
set -euo pipefail
BIN=$1 DIR=$2 FLAVOUR=$3
# shellcheck disable=SC1091
source "$DIR/env"
b() { "$BIN" "$@"; }
b group create -n rg42 >/dev/null
OID=$(b vm create -g rg42 -n vm1 --assign-identity '[system]' | jq -r .identity.principalId)
b keyvault create -g rg42 -n kv42 >/dev/null
ME=$(b directory principal show --id "$(jq -r .clientId "$BADGE_DATA_DIR/admin.json")" | jq -r '.objectId // .id')
b keyvault set-policy -n kv42 --object-id "$ME" --secret-permissions all >/dev/null
b keyvault set-policy -n kv42 --object-id "$OID" --secret-permissions get list >/dev/null
b keyvault secret set --vault-name kv42 --name greeting --value "hello-from-$FLAVOUR" >/dev/null
ready() { b agent status --data-dir "$BADGE_AGENT_DIR" | jq -e '.instances[] | select(.name == "vm1") | .identities | length > 0 and all(.credential)' >/dev/null; }
end=$((SECONDS + 30))
until ready; do ((SECONDS < end)) || { echo "agent not ready" >&2; exit 1; }; sleep 0.1; done
if [[ $FLAVOUR == netns ]]; then
	resolves() { b vm exec vm1 -- getent hosts "kv42.$BADGE_VAULT_SUFFIX" >/dev/null; }
	until resolves; do ((SECONDS < end)) || { echo "vault name does not resolve" >&2; exit 1; }; sleep 0.1; done
	# inside the instance: no credential, no endpoint; only the CA to trust (env cleared)
	b vm exec vm1 -- env -i PATH="$PATH" bash -c '
		tok=$(curl -sSf -H Metadata:true "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$1" | jq -r .access_token)
		curl -sSf --cacert "$2" -H "Authorization: Bearer $tok" "https://kv42.$3:$4/secrets/greeting?api-version=7.4" | jq -r .value' \
		_ "$BADGE_VAULT_RESOURCE" "$BADGE_CA_FILE" "$BADGE_VAULT_SUFFIX" "$BADGE_PORT"
else
	[[ $(b agent status --data-dir "$BADGE_AGENT_DIR" | jq -r '.instances[0].isolation') == appservice ]] || { echo "not app service" >&2; exit 1; }
	b vm exec vm1 -- bash -c '
		[[ -n $IDENTITY_ENDPOINT && -n $IDENTITY_HEADER ]] || exit 9
		tok=$(curl -sSf -H "X-IDENTITY-HEADER: $IDENTITY_HEADER" "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=$1" | jq -r .access_token)
		curl -sSf --cacert "$2" -H "Authorization: Bearer $tok" "$3/vaults/kv42/secrets/greeting?api-version=7.4" | jq -r .value' \
		_ "$BADGE_VAULT_RESOURCE" "$BADGE_CA_FILE" "$BADGE_URL"
fi
SEED
}

# 1. root, network namespaces
work=$(bt_tmpdir)
D="$work/up"
up root "$D" --listen 0.0.0.0:0 --netns-prefix "$PFX" --netns-subnet 10.244.0.0
bt_wait_for env_ready "$D"
grep -q "^export BADGE_AGENT_DIR=" "$D/env" || bt_fail "env without BADGE_AGENT_DIR"
[[ -f "$D/server/badge.db" ]] || bt_fail "not on SQLite in $D/server"
out=$(seed root "$D" netns) || bt_fail "seed (netns) failed: $out"
bt_assert_eq "$out" "hello-from-netns" "secret read inside the instance (netns)"
grep -q "netns isolation" "$D.log" || bt_fail "badge up as root did not use network namespaces"
# the metadata address exists only inside the instance
if inT curl -s --max-time 2 http://169.254.169.254/metadata/versions -H Metadata:true >/dev/null 2>&1; then
	bt_fail "the test namespace reached a metadata endpoint"
fi
# TERM stops server and agent; a restart serves the same instance without enrolling again
HOST_ID=$(jq -r .hostId "$D/agent/host.json")
kill -TERM "$UPID"
stopped() { ! kill -0 "$UPID" 2>/dev/null; }
bt_wait_for stopped
wait "$UPID" && rc=0 || rc=$?
bt_assert_eq "$rc" 0 "exit status of badge up after TERM"
rm -f "$D/env" # so that waiting for it waits for the new process
up root "$D" --listen 0.0.0.0:0 --netns-prefix "$PFX" --netns-subnet 10.244.0.0
bt_wait_for env_ready "$D"
bt_assert_eq "$(jq -r .hostId "$D/agent/host.json")" "$HOST_ID" "host kept across restarts"
bt_assert_eq "$(grep -c 'enrolled as host' "$D.log")" 1 "enrolments"
again() {
	# shellcheck disable=SC1091
	(source "$D/env"; "$BADGE_BIN" vm exec vm1 -- curl -sf -H Metadata:true \
		"http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$BADGE_VAULT_RESOURCE" >/dev/null)
}
bt_wait_for again
bt_stop "$UPID"

# 2. the App Service flavour as an unprivileged user (nobody), in a dir of its own
NB=$(mktemp -d /tmp/badge-t42-nobody.XXXXXX)
bt_cleanup rm -rf -- "$NB"
chmod 755 "$NB"
chown nobody "$NB"
up nobody "$NB/up" --listen 127.0.0.1:0
bt_wait_for env_ready "$NB/up"
grep -q "app service isolation" "$NB/up.log" || bt_fail "badge up without root did not pick the App Service flavour"
out=$(seed nobody "$NB/up" appservice) || bt_fail "seed (app service, nobody) failed: $out"
bt_assert_eq "$out" "hello-from-appservice" "secret read inside the instance (app service, unprivileged)"
bt_stop "$UPID"

# 3. the override as root
D3="$work/up3"
up root "$D3" --listen 127.0.0.1:0 --isolation appservice
bt_wait_for env_ready "$D3"
out=$(seed root "$D3" appservice) || bt_fail "seed (--isolation appservice) failed: $out"
bt_assert_eq "$out" "hello-from-appservice" "secret read inside the instance (--isolation appservice)"
echo "PASS 42-up"
