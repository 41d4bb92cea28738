#!/usr/bin/env bash
# bench-datapath.sh: upload and download throughput of one big image
# through a cloudimage server on 127.0.0.1, beside the machine's own
# limits measured in the same run on the same file:
#   - sha512sum and md5sum of it (the server hashes uploads with both),
#   - cat FILE > /dev/null (what reading the file costs),
#   - a minimal Go HTTP server on 127.0.0.1, driven by the same curl:
#     GET is http.ServeFile of the file (sendfile), PUT reads the body
#     through md5 and sha512 and writes it to a file, as an upload must;
#     it shows what loopback HTTP and the hashes in Go leave for the server.
# and the server's peak RSS during each transfer (VmRSS sampled every
# 100 ms, and VmHWM, from /proc/PID/status).
#
# It builds the binary, starts the server on a temporary data directory,
# and removes both at the end. Everything stays on 127.0.0.1. Output: a
# Markdown table on stdout, and JSON in $BENCH_JSON (default
# ./bench-datapath.json).
#
# Environment:
#   BENCH_SIZE_MIB      size of the random file in MiB (default 1024)
#   BENCH_JSON          where to write the JSON (default ./bench-datapath.json)
#   BENCH_WORKDIR       work directory (default a new one under $TMPDIR; kept if given)
#   BENCH_PROFILE_DIR   if set, also take a CPU profile of the server during
#                       an upload and a download (through --debug-listen),
#                       write them there and print `go tool pprof -top` of each
#   BENCH_PROFILE_SECONDS  length of each profile (default 10)
#   BENCH_TIMEOUT       seconds any one step may take (default 600)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
JSON_OUT=${BENCH_JSON:-$PWD/bench-datapath.json}
STEP_TIMEOUT=${BENCH_TIMEOUT:-600}
PROFILE_DIR=${BENCH_PROFILE_DIR:-}
PROFILE_SECONDS=${BENCH_PROFILE_SECONDS:-10}

log() { printf '[bench-datapath] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -gt 0 ]] || die "BENCH_SIZE_MIB must be a positive integer"
for c in go curl sha512sum md5sum python3; do
	command -v "$c" >/dev/null || die "needs $c"
done

WORK=${BENCH_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/cloudimage-datapath.XXXXXX")}
mkdir -p "$WORK"
SERVER_PID= SAMPLER_PID= REF_PID=
cleanup() {
	local rc=$?
	set +e
	[[ -n $SAMPLER_PID ]] && kill "$SAMPLER_PID" 2>/dev/null
	[[ -n $REF_PID ]] && kill "$REF_PID" 2>/dev/null
	if [[ -n $SERVER_PID ]]; then
		kill "$SERVER_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$SERVER_PID" 2>/dev/null
	fi
	if [[ -z ${BENCH_WORKDIR:-} ]]; then
		rm -rf "$WORK"
	else
		log "work dir kept: $WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
# mbps BYTES START END: decimal MB/s
mbps() { python3 -c "import sys; b,s,e=map(float,sys.argv[1:]); print('%.1f' % (b/1e6/(e-s)))" "$@"; }
ratio() { python3 -c "import sys; a,b=map(float,sys.argv[1:]); print('%.3f' % (a/b))" "$@"; }
status_kib() { # PID FIELD: the field of /proc/PID/status in KiB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# sample_rss PID FILE: the highest VmRSS seen, every 100 ms, until killed.
sample_rss() {
	local max=0 v
	while kill -0 "$1" 2>/dev/null; do
		v=$(status_kib "$1" VmRSS 2>/dev/null || echo 0)
		((${v:-0} > max)) && max=$v && echo "$max" >"$2"
		sleep 0.1
	done
}
start_sampler() { echo 0 >"$WORK/rss.$1"; sample_rss "$SERVER_PID" "$WORK/rss.$1" & SAMPLER_PID=$!; }
stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=; cat "$WORK/rss.$1"; }

# --- build and start ----------------------------------------------------------
log "building cloudimage"
(cd "$ROOT" && CGO_ENABLED=0 timeout "$STEP_TIMEOUT" go build -o "$WORK/cloudimage" ./cmd/cloudimage)
BIN=$WORK/cloudimage
DATA=$WORK/data
mkdir -p "$DATA"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
PASSWORD="bench-$RANDOM$RANDOM$RANDOM"
serve_args=(serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" --log-level warn)
if [[ -n $PROFILE_DIR ]]; then
	DEBUG_PORT=$(free_port)
	serve_args+=(--debug-listen "127.0.0.1:$DEBUG_PORT")
	mkdir -p "$PROFILE_DIR"
fi
CLOUDIMAGE_ADMIN_PASSWORD=$PASSWORD "$BIN" "${serve_args[@]}" >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 150); do
	curl -s -o /dev/null --max-time 2 "$URL/" && break
	kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited"; }
	sleep 0.2
done
APPKEY=$(awk '/appkey:/ { print $2 }' "$WORK/server.out")
[[ -n $APPKEY ]] || die "no appkey in the server's bootstrap output"
TOKEN=$(CLOUDIMAGE_URL=$URL CLOUDIMAGE_APPKEY=$APPKEY CLOUDIMAGE_USERNAME=admin CLOUDIMAGE_PASSWORD=$PASSWORD \
	"$BIN" token issue --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
RSS_START=$(status_kib "$SERVER_PID" VmRSS)

new_image() {
	curl -sS --fail-with-body --max-time 30 -X POST "$URL/v2/images" \
		-H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
		-d '{"name":"bench-datapath","disk_format":"raw","container_format":"bare","os_type":"linux","nhncloud_allow_download":"true"}' |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
upload() { # ID
	curl -sS --fail-with-body --max-time "$STEP_TIMEOUT" -X PUT -T "$FILE" \
		-H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' \
		-H 'Expect:' "$URL/v2/images/$1/file" -o /dev/null
}
download() { # ID
	curl -sS --fail --max-time "$STEP_TIMEOUT" -H "X-Auth-Token: $TOKEN" \
		"$URL/v2/images/$1/file" -o /dev/null
}

# --- the reference server ----------------------------------------------------
mkdir -p "$WORK/ref"
cat >"$WORK/ref/main.go" <<'GO'
// A minimal HTTP server: GET /f serves the file, PUT /f hashes and stores.
package main

import (
	"crypto/md5"
	"crypto/sha512"
	"io"
	"net/http"
	"os"
)

func main() {
	file, store := os.Args[2], os.Args[3]
	http.HandleFunc("GET /f", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, file) })
	http.HandleFunc("PUT /f", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(store)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		m, s := md5.New(), sha512.New()
		if _, err := io.Copy(f, io.TeeReader(io.TeeReader(r.Body, m), s)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		m.Sum(nil)
		s.Sum(nil)
		w.WriteHeader(http.StatusNoContent)
	})
	panic(http.ListenAndServe(os.Args[1], nil))
}
GO
printf 'module ref\n\ngo 1.22\n' >"$WORK/ref/go.mod"
(cd "$WORK/ref" && CGO_ENABLED=0 timeout "$STEP_TIMEOUT" go build -o "$WORK/refserver" .)

# --- the file and the machine's limits -----------------------------------------
FILE=$WORK/image.raw
BYTES=$((SIZE_MIB * 1024 * 1024))
log "writing $SIZE_MIB MiB of random data"
timeout "$STEP_TIMEOUT" head -c "$BYTES" /dev/urandom >"$FILE"
cat "$FILE" >/dev/null # into the page cache, as it is for every step below

log "measuring sha512sum, md5sum, cat"
t0=$(now); timeout "$STEP_TIMEOUT" sha512sum "$FILE" >/dev/null; t1=$(now)
SHA512=$(mbps "$BYTES" "$t0" "$t1")
t0=$(now); timeout "$STEP_TIMEOUT" md5sum "$FILE" >/dev/null; t1=$(now)
MD5=$(mbps "$BYTES" "$t0" "$t1")
t0=$(now); timeout "$STEP_TIMEOUT" cat "$FILE" >/dev/null; t1=$(now)
CAT=$(mbps "$BYTES" "$t0" "$t1")
SLOWER_HASH=$(python3 -c "print(min($SHA512, $MD5))")

REF_PORT=$(free_port)
"$WORK/refserver" "127.0.0.1:$REF_PORT" "$FILE" "$WORK/ref.stored" 2>"$WORK/ref.log" &
REF_PID=$!
for _ in $(seq 50); do
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$REF_PORT/" && break
	sleep 0.1
done
log "measuring the reference server"
t0=$(now)
curl -sS --fail --max-time "$STEP_TIMEOUT" -X PUT -T "$FILE" -H 'Expect:' "http://127.0.0.1:$REF_PORT/f" -o /dev/null
t1=$(now)
REF_UP=$(mbps "$BYTES" "$t0" "$t1")
rm -f "$WORK/ref.stored"
t0=$(now); curl -sS --fail --max-time "$STEP_TIMEOUT" "http://127.0.0.1:$REF_PORT/f" -o /dev/null; t1=$(now)
REF_DOWN=$(mbps "$BYTES" "$t0" "$t1")
kill "$REF_PID" 2>/dev/null; wait "$REF_PID" 2>/dev/null || true

# --- the transfers -------------------------------------------------------------
ID=$(new_image)
log "uploading to image $ID"
start_sampler up
t0=$(now); upload "$ID"; t1=$(now)
RSS_UP=$(stop_sampler up)
UPLOAD=$(mbps "$BYTES" "$t0" "$t1")

log "downloading"
start_sampler down
t0=$(now); download "$ID"; t1=$(now)
RSS_DOWN=$(stop_sampler down)
DOWNLOAD=$(mbps "$BYTES" "$t0" "$t1")
HWM=$(status_kib "$SERVER_PID" VmHWM)

UP_RATIO=$(ratio "$UPLOAD" "$SLOWER_HASH")
DOWN_RATIO=$(ratio "$DOWNLOAD" "$CAT")
UP_REF_RATIO=$(ratio "$UPLOAD" "$REF_UP")
DOWN_REF_RATIO=$(ratio "$DOWNLOAD" "$REF_DOWN")
kib_mib() { python3 -c "print('%.1f' % ($1/1024))"; }

cat <<EOF

Data path, $SIZE_MIB MiB random raw image, 127.0.0.1, $(nproc) CPUs, Go $(go env GOVERSION)

| measure | MB/s | limit | limit MB/s | ratio | target |
|---|---:|---|---:|---:|---:|
| upload (PUT /v2/images/{id}/file) | $UPLOAD | slower of sha512sum ($SHA512) and md5sum ($MD5) | $SLOWER_HASH | $UP_RATIO | >= 0.85 |
| download (GET /v2/images/{id}/file) | $DOWNLOAD | cat FILE > /dev/null | $CAT | $DOWN_RATIO | >= 0.80 |
| upload | $UPLOAD | minimal Go server: PUT, md5+sha512, to a file | $REF_UP | $UP_REF_RATIO | |
| download | $DOWNLOAD | minimal Go server: GET, http.ServeFile | $REF_DOWN | $DOWN_REF_RATIO | |

| server RSS | MiB |
|---|---:|
| before the transfers | $(kib_mib "$RSS_START") |
| peak sampled during upload | $(kib_mib "$RSS_UP") |
| peak sampled during download | $(kib_mib "$RSS_DOWN") |
| VmHWM (peak of the process's life) | $(kib_mib "$HWM") |
EOF

cat >"$JSON_OUT" <<EOF
{
  "size_bytes": $BYTES,
  "cpus": $(nproc),
  "sha512sum_mbps": $SHA512,
  "md5sum_mbps": $MD5,
  "cat_mbps": $CAT,
  "upload_mbps": $UPLOAD,
  "download_mbps": $DOWNLOAD,
  "upload_vs_slower_hash": $UP_RATIO,
  "download_vs_cat": $DOWN_RATIO,
  "ref_upload_mbps": $REF_UP,
  "ref_download_mbps": $REF_DOWN,
  "upload_vs_ref": $UP_REF_RATIO,
  "download_vs_ref": $DOWN_REF_RATIO,
  "rss_start_kib": $RSS_START,
  "rss_peak_upload_kib": $RSS_UP,
  "rss_peak_download_kib": $RSS_DOWN,
  "vm_hwm_kib": $HWM
}
EOF
log "JSON written to $JSON_OUT"

# --- optional profiles ----------------------------------------------------------
# Each profile runs while transfers repeat, so it covers only transfer time.
if [[ -n $PROFILE_DIR ]]; then
	profile() { # NAME: CPU profile of the server while "$@" repeats
		local name=$1; shift
		curl -sS --max-time $((PROFILE_SECONDS + 30)) -o "$PROFILE_DIR/$name.pprof" \
			"http://127.0.0.1:$DEBUG_PORT/debug/pprof/profile?seconds=$PROFILE_SECONDS" &
		local prof=$! end=$((SECONDS + PROFILE_SECONDS))
		while ((SECONDS < end)); do "$@"; done
		wait "$prof"
		log "profile $PROFILE_DIR/$name.pprof"
		(cd "$ROOT" && go tool pprof -top -nodecount=25 "$BIN" "$PROFILE_DIR/$name.pprof" 2>/dev/null) | head -35
	}
	upload_new() { upload "$(new_image)"; }
	profile upload upload_new
	profile download download "$ID"
fi
