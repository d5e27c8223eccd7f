#!/usr/bin/env bash
# Two instances with the same name in two resource groups on one agent (root, network
# namespaces; topology as in 41, everything inside a namespace this test creates). Checks: the
# first keeps the plain namespace name <prefix>vm1, the second gets <prefix>vm1-<8 hex digits of
# SHA-256 of its lower-cased resource id>; each has its own namespace, hosts file and identity,
# and neither can get the other's token; `badge vm exec -g GROUP vm1` and `badge vm exec
# RESOURCE_ID` reach the right one, plain `vm exec vm1` is refused with both candidates listed;
# after kill -9 and a restart both namespaces are the same ones (same nsfs inode) and serve;
# once the first is deleted, the second keeps its hashed namespace and `vm exec vm1` reaches it.
# Then the App Service flavour (a second host's agent): two same-named instances get their own
# ports and secrets, and rotate-secret tells them apart.
source "${BADGE_SRC:?}/tests/lib.sh"

source "$BADGE_SRC/tests/topology.sh"
bt_topo_begin 49

bt_topo_server

JOIN=$(bt_topo_host h1)
# Started with nsenter rather than `ip netns exec` (bt_topo_agent): the agent keeps the machine's
# mount namespace, so the namespaces it mounts under /run/netns outlive it, as they do for an
# agent in the host's mount namespace, and the restart below can tell reuse from re-creation.
start_agent() {
	nsenter --net="/run/netns/$T" "$BADGE_BIN" agent --data-dir "$A" --server "$BADGE_URL" --ca-file "$CA" \
		--isolation netns --netns-prefix "$PFX" --netns-subnet 10.249.0.0 --sync-timeout 5 "$@" \
		>>"$A.log" 2>&1 </dev/null &
	APID=$!
	bt_cleanup bt_stop "$APID"
	bt_log "$A.log"
}
start_agent --join-token "$JOIN"

for g in rgA rgB; do
	mgmt PUT "/subscriptions/$SUB/resourcegroups/$g?api-version=2021-04-01" '{"location":"local"}' >/dev/null
done
vm_id() { echo "/subscriptions/$SUB/resourceGroups/$1/providers/Microsoft.Compute/virtualMachines/$2"; }
vm_put() { # GROUP NAME: prints the principal id of its system-assigned identity
	mgmt PUT "$(vm_id "$1" "$2")?$AV" \
		"{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned\"},\"properties\":{\"hostId\":\"h1\"}}" |
		jq -r .identity.principalId
}
RID_A=$(vm_id rgA vm1)
RID_B=$(vm_id rgB vm1)

bt_topo_status
ns_of() { status | jq -r --arg r "$1" '.instances[] | select(.resourceId == $r) | .namespace'; }

# the first vm1 arrives alone: plain name; the second one later: hashed, the first keeps its own
OID_A=$(vm_put rgA vm1)
[[ $OID_A =~ ^[0-9a-f-]{36}$ ]] || bt_fail "instance A without a principal"
bt_wait_for ready "$RID_A"
OID_B=$(vm_put rgB vm1)
[[ $OID_B =~ ^[0-9a-f-]{36}$ ]] || bt_fail "instance B without a principal"
bt_wait_for ready "$RID_A" "$RID_B"

HASH_B=$(printf '%s' "${RID_B,,}" | sha256sum | cut -c1-8)
NS_A="${PFX}vm1"
NS_B="${PFX}vm1-$HASH_B"
bt_assert_eq "$(ns_of "$RID_A")" "$NS_A" "the first instance's namespace"
bt_assert_eq "$(ns_of "$RID_B")" "$NS_B" "the second instance's namespace"
bt_assert_eq "$(status | jq -r --arg r "$RID_B" '.instances[] | select(.resourceId == $r) | .resourceGroup')" rgB \
	"resourceGroup in agent status"
for ns in "$NS_A" "$NS_B"; do
	[[ $(stat -f -L -c %T "/run/netns/$ns") == nsfs ]] || bt_fail "/run/netns/$ns is not a live namespace"
	[[ -s "/etc/netns/$ns/hosts" ]] || bt_fail "no /etc/netns/$ns/hosts"
done
INO_A=$(stat -L -c %i "/run/netns/$NS_A")
INO_B=$(stat -L -c %i "/run/netns/$NS_B")
[[ $INO_A != "$INO_B" ]] || bt_fail "both instances share one network namespace"

IMDS="http://169.254.169.254/metadata/identity/oauth2/token"
MRES="$BADGE_MANAGEMENT_RESOURCE"
vmx() { "$BADGE_BIN" vm exec --data-dir "$A" "$@"; }
b64pad() { local s; s=$(cut -d. -f2 <<<"$1" | tr '_-' '/+'); while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; }
oid_of() { b64pad "$(jq -r .access_token <<<"$1")" | jq -r .oid; }
token() { vmx "$@" -- curl -sS -H Metadata:true "$IMDS?api-version=2018-02-01&resource=$MRES"; }

# 1. -g reaches the right one, each gets its own identity's token
bt_assert_eq "$(oid_of "$(token -g rgA vm1)")" "$OID_A" "-g rgA vm1 gets A's token"
bt_assert_eq "$(oid_of "$(token --resource-group rgB vm1)")" "$OID_B" "--resource-group rgB vm1 gets B's token"
bt_assert_eq "$(oid_of "$(token -g RGB vm1)")" "$OID_B" "resource group names compare without regard to case"
# ... and so does the resource id (any case)
bt_assert_eq "$(oid_of "$(token "$RID_A")")" "$OID_A" "resource id of A"
bt_assert_eq "$(oid_of "$(token "${RID_B^^}")")" "$OID_B" "resource id of B, upper case"
doc=$(vmx -g rgB vm1 -- curl -sS -H Metadata:true "http://169.254.169.254/metadata/instance/compute?api-version=2021-02-01")
bt_assert_eq "$(jq -r .resourceGroupName <<<"$doc")" rgB "B's compute document"
bt_assert_eq "$(jq -r .resourceId <<<"$doc")" "$RID_B" "B's compute resourceId"

# 2. A cannot get B's token (nor B A's): 400, by object id
code=$(vmx -g rgA vm1 -- curl -s -o /dev/null -w '%{http_code}' -H Metadata:true \
	"$IMDS?api-version=2018-02-01&resource=$MRES&object_id=$OID_B")
bt_assert_eq "$code" 400 "A asking for B's identity"
code=$(vmx "$RID_B" -- curl -s -o /dev/null -w '%{http_code}' -H Metadata:true \
	"$IMDS?api-version=2018-02-01&resource=$MRES&object_id=$OID_A")
bt_assert_eq "$code" 400 "B asking for A's identity"

# 3. plain NAME is ambiguous: refused, both candidates listed, nothing run
marker="$work/ran"
if vmx vm1 -- touch "$marker" 2>"$work/amb.err"; then bt_fail "vm exec vm1 ran although two instances are named vm1"; fi
[[ ! -e "$marker" ]] || bt_fail "the command ran although the instance was ambiguous"
grep -q "ambiguous" "$work/amb.err" || bt_fail "no 'ambiguous' in: $(cat "$work/amb.err")"
grep -qF "$RID_A" "$work/amb.err" || bt_fail "candidate A not listed: $(cat "$work/amb.err")"
grep -qF "$RID_B" "$work/amb.err" || bt_fail "candidate B not listed: $(cat "$work/amb.err")"
if vmx -g rgC vm1 -- true 2>/dev/null; then bt_fail "vm exec -g rgC vm1 worked"; fi
if vmx -g rgA "$RID_A" -- true 2>/dev/null; then bt_fail "-g with a resource id was accepted"; fi

# 4. kill -9 and restart: the same namespaces (same nsfs inodes), both serving. In the machine's
# mount namespace the agent has no cause to warn that its names die with it (41 checks the
# warning under `ip netns exec`).
! grep -q "does not pass its mounts to the host" "$A.log" || bt_fail "the agent warned in the host's mount namespace"
kill -9 "$APID"
wait "$APID" 2>/dev/null || true
start_agent
bt_wait_for ready "$RID_A" "$RID_B"
bt_assert_eq "$(ns_of "$RID_A")" "$NS_A" "A's namespace after restart"
bt_assert_eq "$(ns_of "$RID_B")" "$NS_B" "B's namespace after restart"
bt_assert_eq "$(stat -L -c %i "/run/netns/$NS_A")" "$INO_A" "A's namespace reused, not made again"
bt_assert_eq "$(stat -L -c %i "/run/netns/$NS_B")" "$INO_B" "B's namespace reused, not made again"
jq -e --arg a "${RID_A,,}" --arg b "${RID_B,,}" --arg na vm1 --arg nb "vm1-$HASH_B" \
	'.[$a] == $na and .[$b] == $nb' "$A/names.json" >/dev/null || bt_fail "names.json: $(cat "$A/names.json")"
# the readiness polls count against the rate limit: honour a 429 as a client would
served() { # SELECTOR... OID
	local oid=${*: -1} body
	body=$(token "${@:1:$#-1}")
	[[ $(jq -r '.error // empty' <<<"$body") != too_many_requests ]] || return 1
	[[ $(oid_of "$body") == "$oid" ]] || bt_fail "${*:1:$#-1} after restart: $body"
}
bt_wait_for served -g rgA vm1 "$OID_A"
bt_wait_for served "$RID_B" "$OID_B"

# 5. deleting A: its namespace goes, B keeps its hashed one (never renamed), and vm1 is unique now
mgmt DELETE "$RID_A?$AV" >/dev/null
gone() { ! status | jq -e --arg r "$RID_A" '.instances[] | select(.resourceId == $r)' >/dev/null; }
bt_wait_for gone
nsgone() { [[ ! -e "/run/netns/$NS_A" && ! -e "/etc/netns/$NS_A" ]]; }
bt_wait_for nsgone
bt_assert_eq "$(ns_of "$RID_B")" "$NS_B" "B keeps its namespace"
bt_assert_eq "$(stat -L -c %i "/run/netns/$NS_B")" "$INO_B" "B's namespace is the same one"
bt_wait_for served vm1 "$OID_B"

# 6. the App Service flavour on a second host: two "app" arriving together both get hashed local
# names; each has its own port and secret (saved apart), neither secret opens the other's
# endpoint, and rotate-secret takes -g
A2="$work/agent2"
JOIN2=$(bt_topo_host h2)
bt_topo_agent "$A2" 10.250.0.0 --join-token "$JOIN2" --isolation appservice
app_put() {
	mgmt PUT "$(vm_id "$1" app)?$AV" \
		"{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned\"},\"properties\":{\"hostId\":\"h2\"}}" |
		jq -r .identity.principalId
}
APP_OA=$(app_put rgA)
APP_OB=$(app_put rgB)
APP_A=$(vm_id rgA app)
APP_B=$(vm_id rgB app)
status2() { "$BADGE_BIN" agent status --data-dir "$A2" 2>/dev/null; }
ready2() {
	local st
	st=$(status2) || return 1
	for r in "$APP_A" "$APP_B"; do
		jq -e --arg r "$r" '.instances[] | select(.resourceId == $r) | .identities | length > 0 and all(.credential)' \
			<<<"$st" >/dev/null || return 1
	done
}
bt_wait_for ready2
local_of() { status2 | jq -r --arg r "$1" '.instances[] | select(.resourceId == $r) | .localName'; }
LA=$(local_of "$APP_A")
LB=$(local_of "$APP_B")
[[ $LA =~ ^app(-[0-9a-f]{8})?$ && $LB =~ ^app(-[0-9a-f]{8})?$ && $LA != "$LB" ]] || bt_fail "App Service local names: $LA $LB"
jq -e --arg a "$LA" --arg b "$LB" '(.[$a].secret != .[$b].secret) and (.[$a].port != .[$b].port)' "$A2/appservice.json" \
	>/dev/null || bt_fail "App Service ports and secrets not kept apart"
appx() { inT "$BADGE_BIN" vm exec --data-dir "$A2" "$@"; }
app_env() { appx "$@" -- sh -c 'echo "$IDENTITY_ENDPOINT $IDENTITY_HEADER"'; }
read -r EP_A SEC_A <<<"$(app_env -g rgA app)"
read -r EP_B SEC_B <<<"$(app_env "$APP_B")"
[[ $EP_A != "$EP_B" && $SEC_A != "$SEC_B" ]] || bt_fail "both App Service instances got one endpoint or secret"
msi() { inT curl -sS -H "X-IDENTITY-HEADER: $2" "$1?api-version=2019-08-01&resource=$MRES"; }
bt_assert_eq "$(oid_of "$(msi "$EP_A" "$SEC_A")")" "$APP_OA" "App Service A's token"
bt_assert_eq "$(oid_of "$(msi "$EP_B" "$SEC_B")")" "$APP_OB" "App Service B's token"
code=$(inT curl -s -o /dev/null -w '%{http_code}' -H "X-IDENTITY-HEADER: $SEC_A" "$EP_B?api-version=2019-08-01&resource=$MRES")
[[ $code == 4* ]] || bt_fail "A's secret opened B's endpoint ($code)"
if "$BADGE_BIN" agent rotate-secret --data-dir "$A2" app 2>"$work/rot.err"; then bt_fail "rotate-secret app was not ambiguous"; fi
grep -q "match" "$work/rot.err" || bt_fail "rotate-secret app: $(cat "$work/rot.err")"
"$BADGE_BIN" agent rotate-secret --data-dir "$A2" -g rgA app || bt_fail "rotate-secret -g rgA app"
read -r _ SEC_A2 <<<"$(app_env -g rgA app)"
read -r _ SEC_B2 <<<"$(app_env "$APP_B")"
[[ $SEC_A2 != "$SEC_A" ]] || bt_fail "A's secret did not change"
bt_assert_eq "$SEC_B2" "$SEC_B" "B's secret untouched by A's rotation"
echo "PASS 49-agent-same-name"
