# A badge topology inside a network namespace the test creates (root). Source after lib.sh.
#
#   bt_topo_begin TAG        namespace T ("tTAG-PID"), instance namespace prefix PFX, inT CMD...
#                            (run in T); everything is removed at exit, on failure too; without
#                            root the test is skipped; without jq it fails
#   bt_topo_server [ARGS]    starts `badge server` in T (listening on 0.0.0.0:0, data in $S),
#                            sources its env; sets SPID, CA, TENANT, SUB, TOK (an admin
#                            management token), ADMIN_OID; mgmt METHOD PATH [JSON] prints a
#                            2xx body or fails; AV is an api-version for ARM calls
#   bt_topo_host NAME        registers host NAME, prints a join token for it
#   bt_topo_agent DIR SUBNET [ARGS]   starts `badge agent` in T with netns isolation, data in
#                            DIR, instance links in SUBNET (e.g. 10.241.0.0); sets APID
#   bt_topo_seed GROUP SUBNET ADMIN_PERMS   the seed scenario's setup: host h1 and its agent,
#                            group GROUP, instance vm1 (system-assigned identity, OID), vault
#                            seedkv (KV) whose policies give the administrator ADMIN_PERMS (JSON)
#                            and vm1 secrets get/list, secret db-password = s3cr3t-seed; waits
#                            until vm1 has its credential and resolves the vault; in_vm CMD...
#   bt_topo_replicas DB [ARGS]   two servers in T on database DB (bt_pg_newdb), the second joining
#                            the first, both with --public-port 443 ARGS: S1 SPID1 U1 P1 are the
#                            first's; mgmt talks to the second (U2) from then on
#   bt_topo_instances GROUP  creates group GROUP; VM is its instances' path; vm_put NAME puts
#                            instance NAME on h1 with a system-assigned identity, prints its
#                            principal id
#   bt_topo_status           status (the status of the agent with data in $A, JSON); ready ID...
#                            (every instance ID, a name or a resource id, is listed with a
#                            credential for each of its identities)
#   bt_topo_imds             bt_topo_status, and in_vm NAME CMD..., claim JWT FIELD, token NAME
#                            RESOURCE (prints the oid of NAME's token from the metadata endpoint
#                            at IMDS; fails on anything else, a 429 too)
# Servers and agents are started with `ip netns exec` directly (not through a shell function),
# so that bt_stop's signal reaches them.

bt_topo_begin() {
	if [[ $(id -u) != 0 ]]; then
		echo "SKIP: needs root (network namespaces)"
		exit 0
	fi
	command -v jq >/dev/null || bt_fail "jq is required"
	T="t$1-$$"
	PFX="t$1$$-"
	ip netns add "$T"
	bt_cleanup ip netns del "$T"
	bt_cleanup bash -c "rm -rf /etc/netns/${PFX}* /etc/netns/$T; for f in /run/netns/${PFX}*; do [ -e \"\$f\" ] && { umount \"\$f\" 2>/dev/null; rm -f \"\$f\"; }; done; true"
	ip -n "$T" link set lo up
	work=$(bt_tmpdir)
	S="$work/server"
	A="$work/agent"
	AV="api-version=2023-03-01"
}

inT() { ip netns exec "$T" "$@"; }

bt_topo_server() {
	mkdir -p "$S"
	ip netns exec "$T" "$BADGE_BIN" server --data-dir "$S" --listen 0.0.0.0:0 "$@" >>"$S.log" 2>&1 </dev/null &
	SPID=$!
	bt_cleanup bt_stop "$SPID"
	_bt_logs+=("$S.log")
	bt_wait_for test -f "$S/env"
	# shellcheck disable=SC1091
	source "$S/env"
	CA="$BADGE_CA_FILE"
	TENANT=$(jq -r .tenantId "$S/admin.json")
	SUB=$(jq -r .subscriptionId "$S/admin.json")
	TOK=$(inT curl -sSf --cacert "$CA" --data-urlencode "client_id=$(jq -r .clientId "$S/admin.json")" \
		--data-urlencode "client_secret=$(jq -r .clientSecret "$S/admin.json")" \
		--data-urlencode "scope=${BADGE_MANAGEMENT_RESOURCE}.default" -d grant_type=client_credentials \
		"$BADGE_URL/$TENANT/oauth2/v2.0/token" | jq -r .access_token)
	[[ -n "$TOK" && "$TOK" != null ]] || bt_fail "no admin token"
	ADMIN_OID=$(jq -r .objectId "$S/admin.json")
}

mgmt() {
	local args=(-sS --cacert "$CA" -X "$1" -H "Authorization: Bearer $TOK" -H "Content-Type: application/json" -w '\n%{http_code}')
	[[ $# -ge 3 ]] && args+=(-d "$3")
	local out code
	out=$(inT curl "${args[@]}" "$BADGE_URL$2")
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	[[ $code == 2* ]] || bt_fail "$1 $2 answered $code: $out"
	printf '%s' "$out"
}

bt_topo_replicas() {
	local db=$1
	shift
	bt_topo_server --store "$db" --public-port 443 "$@"
	S1=$S SPID1=$SPID U1=$BADGE_URL P1=$BADGE_PORT
	S="$work/server2"
	bt_topo_server --store "$db" --public-port 443 --join-from "$S1" "$@"
	U2=$BADGE_URL
	[[ $U1 != "$U2" ]] || bt_fail "both replicas on one URL"
}

bt_topo_instances() {
	mgmt PUT "/subscriptions/$SUB/resourcegroups/$1?api-version=2021-04-01" '{"location":"local"}' >/dev/null
	VM="/subscriptions/$SUB/resourceGroups/$1/providers/Microsoft.Compute/virtualMachines"
	vm_put() {
		mgmt PUT "$VM/$1?$AV" '{"location":"local","identity":{"type":"SystemAssigned"},"properties":{"hostId":"h1"}}' |
			jq -r .identity.principalId
	}
}

bt_topo_status() {
	status() { "$BADGE_BIN" agent status --data-dir "$A" 2>/dev/null; }
	ready() {
		local st id
		st=$(status) || return 1
		for id in "$@"; do
			jq -e --arg id "$id" '.instances[] | select(.name == $id or .resourceId == $id) |
				.identities | length > 0 and all(.credential)' <<<"$st" >/dev/null || return 1
		done
	}
}

bt_topo_imds() {
	bt_topo_status
	IMDS="http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
	in_vm() {
		local vm=$1
		shift
		"$BADGE_BIN" vm exec --data-dir "$A" "$vm" -- "$@"
	}
	claim() {
		local p=${1#*.}
		p=${p%%.*}
		p=$(tr '_-' '/+' <<<"$p")
		while ((${#p} % 4)); do p+='='; done
		base64 -d <<<"$p" | jq -r ".$2"
	}
	token() {
		local body
		body=$(in_vm "$1" curl -sS -H Metadata:true "$IMDS&resource=$(jq -rn --arg r "$2" '$r|@uri')") || return 1
		[[ $(jq -r '.access_token // empty' <<<"$body") ]] || { echo "$body" >&2; return 1; }
		claim "$(jq -r .access_token <<<"$body")" oid
	}
}

bt_topo_host() {
	mgmt PUT "/subscriptions/$SUB/providers/Badge.Compute/hosts/$1?$AV" '{"location":"local","properties":{}}' >/dev/null
	mgmt POST "/subscriptions/$SUB/providers/Badge.Compute/hosts/$1/joinToken?$AV" | jq -r .joinToken
}

bt_topo_agent() {
	local dir=$1 subnet=$2
	shift 2
	ip netns exec "$T" "$BADGE_BIN" agent --data-dir "$dir" --server "$BADGE_URL" --ca-file "$CA" --isolation netns \
		--netns-prefix "$PFX" --netns-subnet "$subnet" --sync-timeout 5 "$@" >>"$dir.log" 2>&1 </dev/null &
	APID=$!
	bt_cleanup bt_stop "$APID"
	_bt_logs+=("$dir.log")
}

bt_topo_seed() {
	local group=$1 subnet=$2 admin_perms=$3 join
	join=$(bt_topo_host h1)
	bt_topo_agent "$A" "$subnet" --join-token "$join"
	mgmt PUT "/subscriptions/$SUB/resourcegroups/$group?api-version=2021-04-01" '{"location":"local"}' >/dev/null
	VM="/subscriptions/$SUB/resourceGroups/$group/providers/Microsoft.Compute/virtualMachines"
	OID=$(mgmt PUT "$VM/vm1?$AV" '{"location":"local","identity":{"type":"SystemAssigned"},"properties":{"hostId":"h1"}}' |
		jq -r .identity.principalId)
	[[ $OID =~ ^[0-9a-f-]{36}$ ]] || bt_fail "instance without a principal"
	KV="/subscriptions/$SUB/resourceGroups/$group/providers/Microsoft.KeyVault/vaults/seedkv"
	mgmt PUT "$KV?api-version=2023-07-01" "{\"location\":\"local\",\"properties\":{\"tenantId\":\"$TENANT\",
		\"sku\":{\"family\":\"A\",\"name\":\"standard\"},\"accessPolicies\":[
		{\"tenantId\":\"$TENANT\",\"objectId\":\"$ADMIN_OID\",\"permissions\":$admin_perms},
		{\"tenantId\":\"$TENANT\",\"objectId\":\"$OID\",\"permissions\":{\"secrets\":[\"get\",\"list\"]}}]}}" >/dev/null
	inT env BADGE_DATA_DIR="$S" "$BADGE_BIN" keyvault secret set --vault-name seedkv --name db-password --value s3cr3t-seed \
		>/dev/null || bt_fail "operator could not set the secret"
	# defined here, not at source time: tests without the seed keep their own in_vm NAME CMD
	in_vm() { "$BADGE_BIN" vm exec --data-dir "$A" vm1 -- "$@"; }
	bt_wait_for _bt_topo_vm1_ready
	bt_wait_for _bt_topo_vm1_resolves
}

_bt_topo_vm1_ready() {
	"$BADGE_BIN" agent status --data-dir "$A" 2>/dev/null |
		jq -e '.instances[] | select(.name == "vm1") | .identities | length > 0 and all(.credential)' >/dev/null
}
_bt_topo_vm1_resolves() { in_vm getent hosts "seedkv.$BADGE_VAULT_SUFFIX" >/dev/null; }
