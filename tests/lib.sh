# Shared helpers for integration and compatibility tests (bash). Source it first:
#   source "$BADGE_SRC/tests/lib.sh"
# It turns on `set -euo pipefail`, and installs one EXIT trap that runs every registered cleanup
# (servers stopped, temp dirs removed) in reverse order, on success and on failure alike; a
# trap on EXIT that the test set before sourcing is kept and runs last. INT and TERM exit through
# the same path. Nothing here sleeps for a fixed time: waits poll with a deadline.
#
#   bt_tmpdir                   print a new temp dir, removed at exit   (d=$(bt_tmpdir))
#   bt_start_server DIR [ARGS]  start `badge server --data-dir DIR --listen 127.0.0.1:0 ARGS`,
#                               wait (30 s) for DIR/env and source it; sets BT_SERVER_PID;
#                               stopped at exit
#   bt_stop PID                 TERM, wait up to BT_STOP_TIMEOUT (10 s), then KILL
#   bt_wait_for CMD...          run CMD until it succeeds, at most BT_WAIT_TIMEOUT (30 s)
#   bt_cleanup CMD...           register a cleanup command of your own
#   bt_spawn LOG CMD...         start CMD in the background (output to LOG), set BT_PID, stop it
#                               at exit and show LOG on failure: for agents, `badge up`, ...
#   bt_log FILE                 show FILE's last lines if the test fails (server logs are
#                               registered by bt_start_server)
#   bt_admin_api DIR BODY       after bt_start_server DIR, as its administrator (DIR/admin.json):
#                               defines c ARGS (curl trusting the server's CA), code ARGS (c that
#                               prints the status and writes the body to BODY), token RESOURCE
#                               (an access token for it); sets BT_ADMIN_ID, BT_ADMIN_SECRET
#   bt_admin_vault NAME         after bt_admin_api: group rg1 and vault NAME whose access policy
#                               gives the administrator every secret permission; sets BT_VTOK
#                               (the administrator's vault token)
#   bt_fail MSG                 print "FAIL: MSG" and exit 1
#   bt_assert_eq A B MSG        fail unless A == B
set -euo pipefail

: "${BADGE_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${BADGE_BUILD:=$BADGE_SRC/build/dev}"
: "${BADGE_BIN:=$BADGE_BUILD/badge}"
: "${BT_WAIT_TIMEOUT:=30}"
: "${BT_STOP_TIMEOUT:=10}"
BT_POLL=0.1
export BADGE_SRC BADGE_BUILD BADGE_BIN

_bt_cleanups=()
_bt_logs=()
# `trap -p EXIT` prints "trap -- 'CMD' EXIT" with CMD shell-quoted; eval unquotes it exactly.
_bt_prev_exit_trap=$(trap -p EXIT)
_bt_prev_exit_trap=${_bt_prev_exit_trap#trap -- }
eval "_bt_prev_exit_trap=${_bt_prev_exit_trap% EXIT}"

_bt_on_exit() {
	local rc=$?
	set +e
	if ((rc != 0)); then
		local log
		for log in "${_bt_logs[@]}"; do
			[[ -s "$log" ]] || continue
			echo "--- last lines of $log" >&2
			tail -n 30 "$log" >&2
		done
	fi
	local i
	for ((i = ${#_bt_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_bt_cleanups[i]}"
	done
	[[ -n "$_bt_prev_exit_trap" ]] && eval "$_bt_prev_exit_trap"
	exit "$rc"
}
trap _bt_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bt_cleanup CMD [ARGS...]: runs at exit, last registered first.
bt_cleanup() {
	_bt_cleanups+=("$(printf '%q ' "$@")")
}

bt_log() {
	_bt_logs+=("$1")
}

bt_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

bt_assert_eq() {
	[[ "$1" == "$2" ]] || bt_fail "${3:-values differ}: got '$1', expected '$2'"
}

# Every temp dir lives under one root made here, in the test's own shell, so that it is removed
# at exit even when bt_tmpdir runs in a subshell, as in d=$(bt_tmpdir).
_BT_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/badge-test.XXXXXX")
bt_cleanup rm -rf -- "$_BT_ROOT"

# Prints the new dir (and sets BT_TMPDIR when not called in a subshell).
bt_tmpdir() {
	BT_TMPDIR=$(mktemp -d "$_BT_ROOT/tmp.XXXXXX") || bt_fail "mktemp failed"
	echo "$BT_TMPDIR"
}

bt_wait_for() {
	local end=$((SECONDS + BT_WAIT_TIMEOUT))
	until "$@"; do
		((SECONDS < end)) || bt_fail "timed out after ${BT_WAIT_TIMEOUT}s waiting for: $*"
		sleep "$BT_POLL"
	done
}

bt_stop() {
	local pid=$1 end
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	end=$((SECONDS + BT_STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do
		sleep "$BT_POLL"
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bt_stop: pid $pid ignored TERM for ${BT_STOP_TIMEOUT}s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

bt_spawn() {
	local log=$1
	shift
	"$@" >>"$log" 2>&1 </dev/null &
	BT_PID=$!
	bt_cleanup bt_stop "$BT_PID"
	_bt_logs+=("$log")
}

bt_start_server() {
	local dir=$1
	shift
	[[ -x "$BADGE_BIN" ]] || bt_fail "no badge binary at $BADGE_BIN"
	mkdir -p "$dir"
	rm -f "$dir/env"
	"$BADGE_BIN" server --data-dir "$dir" --listen 127.0.0.1:0 "$@" >>"$dir/server.log" 2>&1 </dev/null &
	BT_SERVER_PID=$!
	bt_cleanup bt_stop "$BT_SERVER_PID"
	_bt_logs+=("$dir/server.log")
	local end=$((SECONDS + 30))
	until [[ -f "$dir/env" ]]; do
		kill -0 "$BT_SERVER_PID" 2>/dev/null || bt_fail "badge server exited before writing $dir/env"
		((SECONDS < end)) || bt_fail "badge server did not write $dir/env within 30s"
		sleep "$BT_POLL"
	done
	# shellcheck disable=SC1091
	source "$dir/env"
}

bt_admin_api() {
	BT_ADMIN_ID=$(jq -r .clientId "$1/admin.json")
	BT_ADMIN_SECRET=$(jq -r .clientSecret "$1/admin.json")
	_BT_BODY=$2
	c() { curl -sS --cacert "$BADGE_CA_FILE" "$@"; }
	code() { c -o "$_BT_BODY" -w '%{http_code}' "$@"; }
	token() {
		c -d grant_type=client_credentials -d client_id="$BT_ADMIN_ID" --data-urlencode client_secret="$BT_ADMIN_SECRET" \
			--data-urlencode scope="$1/.default" "$BADGE_URL/$BADGE_TENANT_ID/oauth2/v2.0/token" | jq -r .access_token
	}
}

# bt_admin_vault NAME [PERMISSIONS]: group rg1 and vault NAME with an access policy for the
# administrator (PERMISSIONS, default {"secrets":["all"]}). Sets BT_MTOK (the administrator's
# management token), BT_OID (its object id) and BT_VTOK (its vault token).
bt_admin_vault() {
	local st sub=$BADGE_SUBSCRIPTION_ID perms=${2:-'{"secrets":["all"]}'}
	BT_MTOK=$(token "$BADGE_MANAGEMENT_RESOURCE")
	[[ -n "$BT_MTOK" && "$BT_MTOK" != null ]] || bt_fail "no management token"
	BT_OID=$(/usr/bin/python3 -c 'import sys,json,base64; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"=="*2))["oid"])' "$BT_MTOK")
	local mtok=$BT_MTOK oid=$BT_OID
	st=$(code -X PUT -H "Authorization: Bearer $mtok" -H 'Content-Type: application/json' -d '{"location":"local"}' \
		"$BADGE_URL/subscriptions/$sub/resourcegroups/rg1?api-version=2021-04-01")
	[[ $st == 200 || $st == 201 ]] || bt_fail "resource group: $st"
	st=$(code -X PUT -H "Authorization: Bearer $mtok" -H 'Content-Type: application/json' \
		-d "{\"location\":\"local\",\"properties\":{\"tenantId\":\"$BADGE_TENANT_ID\",\"sku\":{\"family\":\"A\",\"name\":\"standard\"},
	\"accessPolicies\":[{\"tenantId\":\"$BADGE_TENANT_ID\",\"objectId\":\"$oid\",\"permissions\":$perms}]}}" \
		"$BADGE_URL/subscriptions/$sub/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/$1?api-version=2023-07-01")
	[[ $st == 200 || $st == 201 ]] || bt_fail "vault: $st $(cat "$_BT_BODY")"
	BT_VTOK=$(token "$BADGE_VAULT_RESOURCE")
}

# BADGE_TEST_STORE=postgres: servers run on PostgreSQL (tests/pg-lib.sh: bt_pg_newdb, bt_pg_require).
# shellcheck disable=SC1091
source "$BADGE_SRC/tests/pg-lib.sh"
