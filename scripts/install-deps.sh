#!/usr/bin/env bash
# Installs every Debian package badge's build and tests need, and the npm packages of the
# compatibility tests. Idempotent: apt-get runs only for what is missing (and `apt-get update`
# only when something is), npm ci only when node_modules is missing or older than the lockfile.
#   scripts/install-deps.sh            install what is missing
#   scripts/install-deps.sh --check    only report what is missing (exit 1 if anything is)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
	# build
	build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
	# libraries
	libmicrohttpd-dev libcjose-dev libjansson-dev libcurl4-openssl-dev libssl-dev
	libsqlite3-dev libpq-dev libgnutls28-dev
	# tests, benchmarks, the real Azure clients
	sqlite3 postgresql iproute2 curl openssl jq nginx wrk azure-cli python3-azure
)

log() { echo "install-deps: $*" >&2; }
die() { log "$*"; exit 1; }

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

is_installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == "installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
	is_installed "$p" || missing+=("$p")
done
# nodejs may come from elsewhere (nodesource ships npm inside its nodejs): only when `node` is
# absent do we install Debian's, and Debian's npm only when `npm` is absent too.
if ! command -v node >/dev/null 2>&1; then
	is_installed nodejs || missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
	is_installed npm || missing+=(npm)
fi

if ((${#missing[@]})); then
	if ((check_only)); then
		log "missing: ${missing[*]}"
		exit 1
	fi
	SUDO=()
	if [[ $(id -u) -ne 0 ]]; then
		if command -v sudo >/dev/null 2>&1; then
			SUDO=(sudo)
		else
			die "not root and no sudo; install these as root: apt-get install -y --no-install-recommends ${missing[*]}"
		fi
	fi
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${SUDO[@]}" apt-get update -q
	"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
	log "all Debian packages present"
fi

# The compatibility tests' npm packages, pinned by the committed lockfile.
compat=tests/compat
if [[ -f "$compat/package-lock.json" ]]; then
	if [[ ! -d "$compat/node_modules" || "$compat/package-lock.json" -nt "$compat/node_modules" ]]; then
		if ((check_only)); then
			log "npm packages of $compat need installing"
			exit 1
		fi
		command -v npm >/dev/null 2>&1 || die "npm not found"
		log "npm ci in $compat"
		(cd "$compat" && npm ci --no-audit --no-fund)
		touch "$compat/node_modules" # npm ci may keep the directory's old mtime
	else
		log "npm packages of $compat up to date"
	fi
fi
