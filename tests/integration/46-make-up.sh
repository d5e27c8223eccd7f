#!/usr/bin/env bash
# `make up` / `make down` on a clean clone (nothing prebuilt), as root, inside a network namespace
# this test creates: it builds, starts badge, walks through the seed scenario and prints the
# secret the program inside the instance read; badge keeps running (a second `make up` finds it);
# `make down` stops it. Then the App Service flavour: scripts/up.sh as an unprivileged user
# (nobody, reusing the clone's build), which says it uses that flavour and prints the secret too.
# The clone is of HEAD (committed work only). BADGE_UP_NO_DEPS: the test namespace has no
# network, so instead of installing, `install-deps.sh --check` must find nothing missing.
# Slow (a full build): BADGE_TEST_SKIP_MAKE_UP=1 skips it.
if [[ ${BADGE_TEST_STORE:-} == postgres ]]; then
	echo "SKIP: badge up is the one-machine SQLite installation (the pg/ run has nothing to add)"
	exit 77
fi
source "${BADGE_SRC:?}/tests/lib.sh"
BT_WAIT_TIMEOUT=60

if [[ $(id -u) != 0 ]]; then
	echo "SKIP: needs root (network namespaces; the unprivileged part runs as nobody from root)"
	exit 0
fi
if [[ -n ${BADGE_TEST_SKIP_MAKE_UP:-} ]]; then
	echo "SKIP: BADGE_TEST_SKIP_MAKE_UP is set"
	exit 0
fi
"$BADGE_SRC/scripts/install-deps.sh" --check || bt_fail "dependencies missing: run scripts/install-deps.sh"

T="t46-$$"
PFX="t46$$-"
ip netns add "$T"
bt_cleanup ip netns del "$T"
bt_cleanup bash -c "rm -rf /etc/netns/${PFX}*; for f in /run/netns/${PFX}*; do [ -e \"\$f\" ] && { umount \"\$f\" 2>/dev/null; rm -f \"\$f\"; }; done; true"
ip -n "$T" link set lo up

C=$(mktemp -d /tmp/badge-t46.XXXXXX)
bt_cleanup rm -rf -- "$C"
chmod 755 "$C"
git clone -q "$BADGE_SRC" "$C/badge"
# whatever happens, stop what make up started (by its PID file)
bt_cleanup bash -c "ip netns exec $T env BADGE_UP_DIR=$C/badge/.up $C/badge/scripts/down.sh >/dev/null 2>&1; true"
bt_log "$C/badge/.up/badge.log"

mk() { ip netns exec "$T" env BADGE_UP_NO_DEPS=1 BADGE_UP_ARGS="--netns-prefix $PFX --netns-subnet 10.246.0.0" make -C "$C/badge" "$@"; }
out=$(mk up 2>&1) || { tail -n 40 <<<"$out" >&2; bt_fail "make up failed"; }
grep -q "instances are network namespaces" <<<"$out" || bt_fail "make up as root did not say it uses namespaces"
grep -q "example/read-secret inside" <<<"$out" || bt_fail "make up did not run libbadge's example program inside the instance"
for s in "1. A resource group and a vault" "2. An instance with a system-assigned managed identity" \
	"3. Grant the identity access" "4. Store a secret" "6. Inside the instance, a program reads the secret"; do
	grep -qF "$s" <<<"$out" || bt_fail "make up did not explain: $s"
done
secret=$(sed -n 's/.*the secret read inside demo-vm: //p' <<<"$out" | sed 's/\x1b\[[0-9;]*m//g')
[[ $secret == "hello from badge, "* ]] || bt_fail "make up did not print the secret: $(tail -n 20 <<<"$out")"
grep -q "source $C/badge/.up/env" <<<"$out" || bt_fail "make up did not say how to use it"
pid=$(cat "$C/badge/.up/badge.pid")
kill -0 "$pid" || bt_fail "badge is not left running"
# the program ran with nothing but PATH and the CA in its environment: no credential anywhere
grep -q 'env -i PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=' <<<"$out" || bt_fail "the program's environment is not shown empty"

# a second make up finds it running and walks through again
out=$(mk up 2>&1) || { tail -n 40 <<<"$out" >&2; bt_fail "second make up failed"; }
grep -q "already running (pid $pid)" <<<"$out" || bt_fail "second make up did not find badge running"
grep -q "the secret read inside demo-vm: " <<<"$out" || bt_fail "second make up did not read the secret"

mk down >/dev/null
gone() { ! kill -0 "$pid" 2>/dev/null; }
bt_wait_for gone
[[ ! -e "$C/badge/.up/badge.pid" ]] || bt_fail "make down left the PID file"

# the App Service flavour without root, on the clone's build
NB="$C/nobody"
mkdir -p "$NB"
chown nobody "$NB"
bt_cleanup bash -c "ip netns exec $T setpriv --reuid nobody --regid $(id -gn nobody) --clear-groups env BADGE_UP_DIR=$NB/up $C/badge/scripts/down.sh >/dev/null 2>&1; true"
bt_log "$NB/up/badge.log"
out=$(ip netns exec "$T" setpriv --reuid nobody --regid "$(id -gn nobody)" --clear-groups --reset-env \
	env BADGE_UP_NO_DEPS=1 BADGE_UP_NO_BUILD=1 BADGE_UP_DIR="$NB/up" BADGE_UP_ARGS="--listen 127.0.0.1:0" \
	"$C/badge/scripts/up.sh" 2>&1) || { tail -n 40 <<<"$out" >&2; bt_fail "up.sh as nobody failed"; }
grep -q "without root: the App Service flavour" <<<"$out" || bt_fail "up.sh without root did not say it uses the App Service flavour"
grep -q "the secret read inside demo-vm: hello from badge" <<<"$out" || bt_fail "up.sh as nobody did not print the secret"
ip netns exec "$T" setpriv --reuid nobody --regid "$(id -gn nobody)" --clear-groups env BADGE_UP_DIR="$NB/up" \
	"$C/badge/scripts/down.sh" >/dev/null
echo "PASS 46-make-up"
