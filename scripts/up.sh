#!/usr/bin/env bash
# make up: installs what is missing, builds, starts `badge up` (server + agent, SQLite) in the
# background with its data in .up/, and walks through the seed scenario, explaining each step:
# a vault, an instance with a system-assigned identity, an access policy for it, a secret, and a
# program *inside the instance* that reads the secret with no credential anywhere in its code,
# configuration or environment. badge keeps running afterwards; `make down` stops it.
#
# As root the instance is a network namespace with 169.254.169.254 inside it (the real IMDS
# address); without root it is the App Service flavour (IDENTITY_ENDPOINT + IDENTITY_HEADER).
#
# Knobs (environment), for tests and unusual machines:
#   BADGE_UP_DIR      data dir (default .up in the repository)
#   BADGE_UP_ARGS     extra options for `badge up` (e.g. "--listen 127.0.0.1:9443 --isolation appservice")
#   BADGE_UP_TIMEOUT  seconds to wait for badge to serve (default 60)
#   BADGE_UP_NO_DEPS=1  skip scripts/install-deps.sh;  BADGE_UP_NO_BUILD=1  use the existing build
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DATA=${BADGE_UP_DIR:-$ROOT/.up}
BIN=$ROOT/build/dev/badge
DEADLINE=${BADGE_UP_TIMEOUT:-60}
read -r -a UP_ARGS <<<"${BADGE_UP_ARGS:-}"

GROUP=demo VM=demo-vm KV=demo-kv SECRET=greeting

exec 3>&1 # the narration, also from inside $(...)
if [[ -t 1 ]]; then B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'; else B= D= N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N" >&3; }
say() { printf '    %s\n' "$@" >&3; }
die() { echo "make up: $*" >&2; exit 1; }
# wait_until SECONDS CMD...: polls CMD (every 0.1 s) until it succeeds or the deadline passes
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

# ---- 1. dependencies and build ---------------------------------------------------------------
if [[ -z ${BADGE_UP_NO_DEPS:-} ]]; then
	step "Installing what is missing (scripts/install-deps.sh)"
	scripts/install-deps.sh
fi
if [[ -z ${BADGE_UP_NO_BUILD:-} ]]; then
	step "Building (cmake --preset dev && cmake --build --preset dev)"
	# (under make, MAKEFLAGS would make the inner make chatty)
	env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS cmake --preset dev >/dev/null
	env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS cmake --build --preset dev
	# libbadge for the example program, installed where an application would find it
	env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS cmake --install build/dev --prefix build/dev/libbadge >/dev/null
fi
[[ -x $BIN ]] || die "no badge binary at $BIN"

# ---- 2. badge up ---------------------------------------------------------------------------
mkdir -p "$DATA"
chmod 700 "$DATA"
PIDFILE=$DATA/badge.pid LOG=$DATA/badge.log
if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
	step "badge is already running (pid $(cat "$PIDFILE")); walking through the scenario again"
else
	rm -f "$PIDFILE" "$DATA/env"
	if [[ $(id -u) == 0 && " ${UP_ARGS[*]} " != *" appservice "* ]]; then
		FLAVOUR=netns
		step "Starting badge (server + agent, SQLite, data in $DATA) as root: instances are network namespaces"
	else
		FLAVOUR=appservice
		step "Starting badge (server + agent, SQLite, data in $DATA) without root: the App Service flavour"
		say "Without root badge cannot give an instance a network namespace of its own, so an instance" \
			"gets what Azure App Service gives an app: IDENTITY_ENDPOINT (a loopback URL) and" \
			"IDENTITY_HEADER (a secret for that instance only). Run 'make up' as root for the IMDS flavour."
	fi
	printf '    %s$ badge up --data-dir %s %s &%s\n' "$D" "$DATA" "${UP_ARGS[*]}" "$N"
	setsid "$BIN" up --data-dir "$DATA" "${UP_ARGS[@]}" >>"$LOG" 2>&1 </dev/null 3>&- &
	pid=$!
	echo "$pid" >"$PIDFILE"
	started() {
		[[ -f $DATA/env ]] && return 0
		kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; echo "badge up exited; last lines of $LOG:" >&2; tail -n 20 "$LOG" >&2; exit 1; }
		return 1
	}
	if ! wait_until "$DEADLINE" started; then
		kill -TERM "$pid" 2>/dev/null || true
		rm -f "$PIDFILE"
		die "badge did not serve within ${DEADLINE}s; see $LOG"
	fi
	say "pid $pid, log $LOG; $DATA/env says where it is."
fi
# shellcheck disable=SC1091
source "$DATA/env"
# what the agent chose, from its start-up line: "agent: host NAME running (netns isolation)"
if grep 'agent: host .* running (' "$LOG" | tail -n 1 | grep -q '(netns isolation)'; then FLAVOUR=netns; else FLAVOUR=appservice; fi
b() { "$BIN" "$@"; }
# bshow ARGS...: shows `badge ARGS` as one would type it (quoted where needed), then runs it
bshow() {
	local a line="badge"
	for a in "$@"; do
		if [[ $a =~ ^[][A-Za-z0-9_./:=@,+%-]+$ ]]; then line+=" $a"; else line+=" '$a'"; fi
	done
	printf '    %s$ %s%s\n' "$D" "$line" "$N" >&3
	"$BIN" "$@"
}

# ---- 3. the seed scenario ------------------------------------------------------------------
step "1. A resource group and a vault"
say "The vault will hold the secret. Its name resolves as $KV.$BADGE_VAULT_SUFFIX."
bshow group create -n "$GROUP" >/dev/null
bshow keyvault create -g "$GROUP" -n "$KV" >/dev/null
ME=$(b directory principal show --id "$(jq -r .clientId "$BADGE_DATA_DIR/admin.json")" | jq -r '.objectId // .id')
say "You (the bootstrap administrator, $ME) may manage its secrets:"
bshow keyvault set-policy -n "$KV" --object-id "$ME" --secret-permissions all >/dev/null

step "2. An instance with a system-assigned managed identity"
say "badge creates a principal for the instance in the directory; the agent on this host generates" \
	"a key for it (the private key never leaves this host) and gets a certificate for it."
OID=$(bshow vm create -g "$GROUP" -n "$VM" --assign-identity '[system]' | jq -r .identity.principalId)
[[ $OID =~ ^[0-9a-f-]{36}$ ]] || die "the instance has no identity"
say "its identity's object id: $OID"

step "3. Grant the identity access: get and list on the vault's secrets"
bshow keyvault set-policy -n "$KV" --object-id "$OID" --secret-permissions get list >/dev/null

step "4. Store a secret"
VALUE="hello from badge, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
bshow keyvault secret set --vault-name "$KV" --name "$SECRET" --value "$VALUE" >/dev/null

step "5. Wait for the agent to serve the instance"
ready() {
	b agent status --data-dir "$BADGE_AGENT_DIR" |
		jq -e --arg n "$VM" '.instances[] | select(.name == $n) | .identities | length > 0 and all(.credential)' >/dev/null
}
wait_until 30 ready || die "the agent did not get a credential for $VM within 30 s (see $DATA/badge.log)"
if [[ $FLAVOUR == netns ]]; then
	resolves() { b vm exec "$VM" -- getent hosts "$KV.$BADGE_VAULT_SUFFIX" >/dev/null; }
	wait_until 30 resolves || die "$KV.$BADGE_VAULT_SUFFIX does not resolve inside $VM"
	say "$VM is the network namespace $(b agent status --data-dir "$BADGE_AGENT_DIR" | jq -r --arg n "$VM" '.instances[] | select(.name == $n) | .namespace');" \
		"inside it 169.254.169.254 answers, and only there."
else
	say "$VM has its own endpoint $(b agent status --data-dir "$BADGE_AGENT_DIR" | jq -r --arg n "$VM" '.instances[] | select(.name == $n) | .endpoint')" \
		"and header secret; 'badge vm exec' puts them in the program's environment, as App Service does."
fi

step "6. Inside the instance, a program reads the secret"
VAULT_URL="https://$KV.$BADGE_VAULT_SUFFIX:$BADGE_PORT"
# libbadge, installed into the data dir, and examples/read-secret.c built against the installed
# library through pkg-config, exactly as an application would be.
PREFIX=$ROOT/build/dev/libbadge
say "examples/read-secret.c uses libbadge (a managed-identity credential and a Key Vault client);" \
	"libbadge is installed in $PREFIX and the example is built against it with pkg-config."
if [[ ! -f $PREFIX/lib/pkgconfig/badge.pc ]]; then
	env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS cmake --install "$ROOT/build/dev" --prefix "$PREFIX" >"$DATA/install.log" 2>&1 ||
		die "cannot install libbadge into $PREFIX (see $DATA/install.log)"
fi
mkdir -p "$DATA/example"
cp "$ROOT/examples/read-secret.c" "$ROOT/examples/Makefile" "$DATA/example/"
env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" make -s -C "$DATA/example" \
	>"$DATA/example.log" 2>&1 || die "cannot build the example against libbadge (see $DATA/example.log)"
EXAMPLE=$DATA/example/read-secret
# The program's whole environment: PATH, and the CA that signed badge's TLS certificate (trust,
# not a credential). In the App Service flavour `badge vm exec` adds IDENTITY_ENDPOINT/HEADER.
ENVI=(env -i PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE="$BADGE_CA_FILE")
say "Running $EXAMPLE inside $VM with an empty environment:"
if [[ $FLAVOUR == netns ]]; then
	out=$(bshow vm exec "$VM" -- "${ENVI[@]}" "$EXAMPLE" "$VAULT_URL" "$SECRET")
else
	# no hosts file outside a namespace: the vault by path on the server's address, which cannot
	# be a subdomain of the vault resource, so the challenge's host check is off for it
	out=$(bshow vm exec "$VM" -- bash -c 'exec env -i PATH="$PATH" SSL_CERT_FILE="$1" IDENTITY_ENDPOINT="$IDENTITY_ENDPOINT" IDENTITY_HEADER="$IDENTITY_HEADER" "$2" --no-challenge-verification "$3" "$4"' \
		_ "$BADGE_CA_FILE" "$EXAMPLE" "$BADGE_URL/vaults/$KV" "$SECRET")
fi
[[ $out == "$VALUE" ]] || die "the program inside $VM read '$out', expected '$VALUE'"
printf '\n    %sthe secret read inside %s: %s%s\n' "$B" "$VM" "$out" "$N"

# ---- 4. how to use it ------------------------------------------------------------------------
step "badge is running (pid $(cat "$PIDFILE"), log $LOG)"
cat <<EOF
    Use it from a shell:
        source $DATA/env              # server URL, CA, tenant, where the agent is
        $BIN vm create -g $GROUP -n web --assign-identity '[system]'
        $BIN vm exec $VM -- bash       # a shell inside the instance
        $BIN keyvault secret list --vault-name $KV
    Inside an instance, any Azure SDK's ManagedIdentityCredential / DefaultAzureCredential works
    with no configuration$([[ $FLAVOUR == netns ]] && echo " (IMDS at 169.254.169.254)" || echo " (IDENTITY_ENDPOINT/IDENTITY_HEADER, set by badge vm exec)").
    Stop it with: make down
EOF
