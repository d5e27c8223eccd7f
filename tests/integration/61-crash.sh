#!/usr/bin/env bash
# Crash safety: secrets written under load by concurrent clients while the server is killed
# with SIGKILL twenty times; after every restart, and at the end, every write that a client saw
# acknowledged (200) is readable with its value. Runs on SQLite (integration/61-crash) and on
# PostgreSQL (pg/integration/61-crash).
source "$BADGE_SRC/tests/lib.sh"
ROUNDS=${BADGE_CRASH_ROUNDS:-20}
dir=$(bt_tmpdir)
srv="$dir/server"
bt_start_server "$srv" --public-port 443 # tokens stay valid across restarts on new ports
bt_admin_api "$srv" "$dir/body"
bt_admin_vault kv1
vtok=$BT_VTOK

# writer ID ROUND: writes (and overwrites: versions) until the server is gone; logs every
# attempt, then each acknowledged one. A write cut by the kill is in doubt: it may or may not
# have been applied.
writer() {
	local i=0 st name val
	while :; do
		name="c$((i % 25))-$1" val="$1-r$2-$i"
		echo "$name $val" >>"$dir/tried-$1"
		st=$(curl -sS --cacert "$BADGE_CA_FILE" -o /dev/null -w '%{http_code}' -m 10 -X PUT \
			-H "Authorization: Bearer $vtok" -H 'Content-Type: application/json' \
			-d "{\"value\":\"$val\"}" "$BADGE_URL/vaults/kv1/secrets/$name?api-version=7.4" 2>/dev/null) || return 0
		[[ $st == 200 ]] || { echo "writer $1: unexpected $st" >>"$dir/errors"; return 0; }
		echo "$name $val" >>"$dir/acked-$1"
		i=$((i + 1))
	done
}
# A name's value must be its last acknowledged one, or one of the in-doubt writes after it;
# a name never acknowledged may be missing.
verify() {
	local name val st w
	declare -A ok=() acked=() have=()
	for w in a b c; do
		while read -r name val; do acked[$val]=1; done <"$dir/acked-$w"
		while read -r name val; do
			if [[ -n "${acked[$val]:-}" ]]; then
				ok[$name]=" $val "
				have[$name]=1
			else
				ok[$name]="${ok[$name]:-} $val "
			fi
		done <"$dir/tried-$w"
	done
	for name in "${!ok[@]}"; do
		st=$(code -H "Authorization: Bearer $vtok" "$BADGE_URL/vaults/kv1/secrets/$name?api-version=7.4")
		if [[ $st == 404 && -z "${have[$name]:-}" ]]; then continue; fi
		[[ $st == 200 ]] || bt_fail "round $1: acknowledged secret $name unreadable ($st)"
		val=$(jq -r .value "$dir/body")
		[[ "${ok[$name]}" == *" $val "* ]] || bt_fail "round $1: $name is '$val', expected one of:${ok[$name]}"
	done
}
for w in a b c; do : >"$dir/acked-$w"; : >"$dir/tried-$w"; done
count() { cat "$dir"/acked-* | wc -l; }
for ((r = 1; r <= ROUNDS; r++)); do
	before=$(count)
	pids=()
	for w in a b c; do
		writer "$w" "$r" &
		pids+=($!)
	done
	more() { (($(count) >= before + 15)); }
	bt_wait_for more
	kill -9 "$BT_SERVER_PID"
	wait "$BT_SERVER_PID" 2>/dev/null || true
	wait "${pids[@]}"
	[[ ! -s "$dir/errors" ]] || bt_fail "$(cat "$dir/errors")"
	bt_start_server "$srv" --public-port 443
	verify "$r"
done
echo "ok 61-crash ($ROUNDS kills, $(count) acknowledged writes all readable)"
