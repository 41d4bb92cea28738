#!/usr/bin/env bash
# Run OpenStack tempest's image v2 API tests (non-admin) against a fresh
# cloudimage server on 127.0.0.1, with cloudimage's own Keystone-like
# identity at /identity/v3. Needs root (apt-get), Go, and Debian's packages
# `tempest` and `python3-openstackclient`; nothing else from the network.
#
#   bash scripts/tempest.sh            # from the repository root
#
# Knobs (environment):
#   TEMPEST_REGEX              tests to run (default: image v2, not admin)
#   TEMPEST_CONCURRENCY        tempest workers (default 2)
#   TEMPEST_TIMEOUT            seconds before the tempest run is cut (default 900)
#   TEMPEST_BUILD_TIMEOUT      [image] build_timeout, seconds (default 60)
#   TEMPEST_IMPORT_IMAGE       [image-feature-enabled] import_image (default True)
#   TEMPEST_OS_GLANCE_RESERVED [image-feature-enabled] os_glance_reserved (default True)
#   TEMPEST_MANAGE_LOCATIONS   [image-feature-enabled] manage_locations (default False)
#   TEMPEST_CONTAINER_FORMATS  [image] container_formats; the first is used for most images
#   TEMPEST_DISK_FORMATS       [image] disk_formats; the first is used for most images, and
#                              ListUserImagesTest uploads random bytes under the first 6
#   TEMPEST_WORKDIR            where to put everything (default: a new mktemp -d)
#   TEMPEST_KEEP=1             keep the work dir even when everything passed
#   CLOUDIMAGE_TEMPEST_PROFILE server profile (default openstack; empty: no --profile flag)
#   CLOUDIMAGE_REGION          region given to the server and to tempest (default RegionOne)
#   CLOUDIMAGE_SERVE_ARGS      extra flags for `cloudimage serve` (word-split)
#   TEMPEST_MIN_PASSED         fail unless at least this many tests passed (default 54,
#                              what a real Glance 25.1 with Keystone passes here)
#
# Exit status: 0 only when tempest ran, nothing failed and at least one test passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/scripts/tempest"
# tempest is Debian's and runs on /usr/bin/python3; `python3` on PATH may be
# another interpreter (pyenv) without tempest's modules.
PY=/usr/bin/python3

REGEX=${TEMPEST_REGEX:-'^tempest\.api\.image\.v2\.(?!admin)'}
CONCURRENCY=${TEMPEST_CONCURRENCY:-2}
RUN_TIMEOUT=${TEMPEST_TIMEOUT:-900}
BUILD_TIMEOUT=${TEMPEST_BUILD_TIMEOUT:-60}
IMPORT_IMAGE=${TEMPEST_IMPORT_IMAGE:-True}
OS_GLANCE_RESERVED=${TEMPEST_OS_GLANCE_RESERVED:-True}
MANAGE_LOCATIONS=${TEMPEST_MANAGE_LOCATIONS:-False}
CONTAINER_FORMATS=${TEMPEST_CONTAINER_FORMATS:-bare,ami,ari,aki,ovf,ova}
DISK_FORMATS=${TEMPEST_DISK_FORMATS:-raw,qcow2,vhd,vmdk,vdi,iso,vhdx,ami,ari,aki}
PROFILE=${CLOUDIMAGE_TEMPEST_PROFILE-openstack}
MIN_PASSED=${TEMPEST_MIN_PASSED:-54}
REGION=${CLOUDIMAGE_REGION:-RegionOne}
# Primary and alt are held per test class; with N workers up to 2N accounts
# are held at once, so provision 2 per worker.
NACCOUNTS=$((2 * CONCURRENCY))

log() { printf '==> %s\n' "$*" >&2; }

# --- 1. packages ------------------------------------------------------------
need_pkgs=()
command -v tempest >/dev/null 2>&1 || need_pkgs+=(tempest)
command -v openstack >/dev/null 2>&1 || need_pkgs+=(python3-openstackclient)
if ((${#need_pkgs[@]})); then
	log "installing ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${need_pkgs[@]}" >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q "${need_pkgs[@]}" >/dev/null; }
fi
log "tempest $(dpkg-query -W -f='${Version}' python3-tempest 2>/dev/null || echo '?')"

# --- work dir and cleanup -----------------------------------------------------
WORK=${TEMPEST_WORKDIR:-$(mktemp -d /tmp/cloudimage-tempest.XXXXXX)}
mkdir -p "$WORK"
SERVER_PID= HTTP_PID= OK=0
cleanup() {
	local rc=$?
	set +e
	for pid in $HTTP_PID $SERVER_PID; do
		kill "$pid" 2>/dev/null
	done
	for pid in $HTTP_PID $SERVER_PID; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$pid" 2>/dev/null
	done
	if ((OK)) && [[ -z ${TEMPEST_KEEP:-} && -z ${TEMPEST_WORKDIR:-} ]]; then
		rm -rf "$WORK"
	else
		log "work dir kept: $WORK (server.log, ws/tempest.log, ws/etc/tempest.conf)"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() { # URL PID NAME
	for _ in $(seq 150); do
		curl -s -o /dev/null --max-time 2 "$1" && return 0
		kill -0 "$2" 2>/dev/null || { log "$3 exited"; return 1; }
		sleep 0.2
	done
	log "$3 did not answer at $1"
	return 1
}

# --- 2. build and start cloudimage --------------------------------------------
log "building cloudimage"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/cloudimage" ./cmd/cloudimage)
BIN="$WORK/cloudimage"
DATA="$WORK/data"
mkdir -p "$DATA"

# The file that web-download imports (and that [image] http_image names).
HTTP_PORT=$(free_port)
mkdir -p "$WORK/http"
head -c 1048576 /dev/urandom >"$WORK/http/tempest-image.raw"
HTTP_IMAGE="http://127.0.0.1:$HTTP_PORT/tempest-image.raw"

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
# Tempest uploads random bytes under every disk format (with
# image_format_enforcement = False below), so the server must not refuse
# data that is not in its disk_format; unsafe data is still refused.
serve_args=(serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" --public-url "$URL"
	--region "$REGION" --shutdown-timeout 5s --require-format-match=false)
[[ -n $PROFILE ]] && serve_args+=(--profile "$PROFILE")
# shellcheck disable=SC2206 # word splitting is the point
[[ -n ${CLOUDIMAGE_SERVE_ARGS:-} ]] && serve_args+=($CLOUDIMAGE_SERVE_ARGS)
# web-download fetches only from allowed hosts (none by default); allow the
# local file server.
serve_args+=(--import-allowed-hosts "127.0.0.1:$HTTP_PORT")
log "starting: cloudimage ${serve_args[*]}"
CLOUDIMAGE_ADMIN_PASSWORD="tempest-admin-$RANDOM$RANDOM$RANDOM" \
	"$BIN" "${serve_args[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_http "$URL/" "$SERVER_PID" cloudimage || { tail -n 30 "$WORK/server.log" >&2; exit 1; }

"$PY" -m http.server --bind 127.0.0.1 --directory "$WORK/http" "$HTTP_PORT" \
	>"$WORK/http.log" 2>&1 &
HTTP_PID=$!
wait_http "$HTTP_IMAGE" "$HTTP_PID" "http.server" || exit 1

IDENTITY_URL="$URL/identity/v3"

# --- 3. projects and users (offline admin commands, same data dir) -----------
ACCOUNTS="$WORK/accounts.yaml"
: >"$ACCOUNTS"
for i in $(seq "$NACCOUNTS"); do
	project="tempest-project-$i" user="tempest-user-$i"
	password="tempest-pw-$i-$("$PY" -c 'import secrets; print(secrets.token_hex(12))')"
	"$BIN" --data-dir "$DATA" project create "$project" >/dev/null
	"$BIN" --data-dir "$DATA" user create --project "$project" --role member \
		--password "$password" "$user" >/dev/null
	cat >>"$ACCOUNTS" <<-EOF
		- username: '$user'
		  password: '$password'
		  project_name: '$project'
		  domain_name: 'Default'
		  user_domain_name: 'Default'
		  project_domain_name: 'Default'
		  roles:
		    - 'member'
	EOF
done
log "created $NACCOUNTS projects and member users"

# --- 4. tempest workspace and configuration -----------------------------------
WS="$WORK/ws"
# tempest writes a tempest.log into the directory it runs in.
(cd "$WORK" && tempest init --workspace-path "$WORK/workspace.yaml" --name cloudimage "$WS" >/dev/null)
cp "$ACCOUNTS" "$WS/etc/accounts.yaml"
CONF="$WS/etc/tempest.conf"
cat >"$CONF" <<EOF
[DEFAULT]
log_dir = $WS
log_file = tempest.log
debug = True

[oslo_concurrency]
lock_path = $WS/tempest_lock

[auth]
use_dynamic_credentials = False
test_accounts_file = $WS/etc/accounts.yaml
default_credentials_domain_name = Default
create_isolated_networks = False

[identity]
uri_v3 = $IDENTITY_URL
auth_version = v3
region = $REGION
v3_endpoint_type = public
disable_ssl_certificate_validation = True

[identity-feature-enabled]
api_v2 = False
api_v3 = True

[service_available]
glance = True
cinder = False
neutron = False
nova = False
swift = False
horizon = False

[image]
catalog_type = image
region = $REGION
endpoint_type = public
http_image = $HTTP_IMAGE
build_timeout = $BUILD_TIMEOUT
build_interval = 1
container_formats = $CONTAINER_FORMATS
disk_formats = $DISK_FORMATS

[image-feature-enabled]
api_v2 = True
api_v1 = False
import_image = $IMPORT_IMAGE
os_glance_reserved = $OS_GLANCE_RESERVED
manage_locations = $MANAGE_LOCATIONS
# Newer tempests read it; Debian's 33.0.0 does not know it and ignores
# it. The server does not check formats here: --require-format-match above.
image_format_enforcement = False

[validation]
run_validation = False
EOF

# --- 5. run ------------------------------------------------------------------
log "cloudimage at $URL, identity $IDENTITY_URL, http_image $HTTP_IMAGE"
log "tempest run --regex '$REGEX' --concurrency $CONCURRENCY"
(cd "$WS" && tempest run --config-file "$CONF" --list-tests --regex "$REGEX") 2>/dev/null |
	grep '^tempest\.' >"$WORK/selected.txt" || true
log "$(wc -l <"$WORK/selected.txt") tests selected"
rc=0
(cd "$WS" && timeout "$RUN_TIMEOUT" tempest run --config-file "$CONF" \
	--regex "$REGEX" --concurrency "$CONCURRENCY") >"$WORK/tempest-run.log" 2>&1 || rc=$?
# The per-test lines, without tempest's own long summary.
grep -E '^\{[0-9]+\} ' "$WORK/tempest-run.log" || true
if ((rc == 124)); then
	log "tempest run was cut after ${RUN_TIMEOUT}s"
fi

src=0
(cd "$WS" && stestr last --subunit) >"$WORK/results.subunit" 2>/dev/null || true
if [[ -s $WORK/results.subunit ]]; then
	"$PY" "$HERE/summarize.py" --list "$WORK/selected.txt" --min-passed "$MIN_PASSED" <"$WORK/results.subunit" || src=$?
else
	src=1
	log "tempest produced no results; the end of its output:"
	tail -n 40 "$WORK/tempest-run.log" >&2
fi

if ((rc != 0 || src != 0)); then
	log "FAILED (tempest exit $rc). Last lines of the server log:"
	tail -n 20 "$WORK/server.log" >&2
	exit 1
fi
OK=1
log "all selected tempest tests passed or were skipped"
