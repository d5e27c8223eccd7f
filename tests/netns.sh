# Runs a test inside a network namespace of its own, where badge's service names resolve:
# source it after lib.sh, then call `bt_netns_enter NAME...` at the top of the test. The first
# call (in the machine's namespace) creates a namespace "bt-<random>" with loopback up and a hosts
# file (/etc/netns/<ns>/hosts, bind-mounted over /etc/hosts by `ip netns exec`) that maps
# login.D, management.D, vault.D and each NAME.vault.D to 127.0.0.1 (D = BT_DOMAIN, default
# badge.internal), re-runs the test script inside it, and deletes the namespace and its /etc/netns
# entry at exit, on failure too. Inside, bt_netns_enter returns at once. Needs root: without it
# the test is skipped, or fails under CI=true.
: "${BT_DOMAIN:=badge.internal}"

bt_netns_enter() {
	if [[ -n "${BT_NETNS:-}" ]]; then
		return 0
	fi
	if [[ $(id -u) -ne 0 ]]; then
		[[ "${CI:-}" == true ]] && bt_fail "this test needs root (network namespaces)"
		echo "SKIP: needs root for a network namespace"
		exit 0
	fi
	local ns
	ns="bt-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	ip netns add "$ns" || bt_fail "cannot create network namespace $ns"
	bt_cleanup rm -rf -- "/etc/netns/$ns"
	bt_cleanup ip netns del "$ns"
	ip -n "$ns" link set lo up
	mkdir -p "/etc/netns/$ns"
	{
		echo "127.0.0.1 localhost"
		echo "::1 localhost"
		echo "127.0.0.1 login.$BT_DOMAIN management.$BT_DOMAIN vault.$BT_DOMAIN"
		local v
		for v in "$@"; do echo "127.0.0.1 $v.vault.$BT_DOMAIN"; done
	} >"/etc/netns/$ns/hosts"
	local rc=0
	ip netns exec "$ns" env BT_NETNS="$ns" bash "$0" || rc=$?
	exit "$rc"
}
