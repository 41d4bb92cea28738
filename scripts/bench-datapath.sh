#!/usr/bin/env bash
# bench-datapath.sh: upload and download throughput of one big image
# through a cloudimage server on 127.0.0.1, beside the machine's own
# limits measured in the same run on the same file:
#   - sha512sum and md5sum of it (the server hashes uploads with both),
#   - cat BLOB > /dev/null of the blob file the upload stored (what
#     reading it costs), with the file in the page cache (warm) and
#     evicted from it (cold: the disk's read rate as this machine sees it),
#   - a minimal Go HTTP server on 127.0.0.1, driven by the same clients:
#     GET is http.ServeFile of the blob file (sendfile), PUT reads the body
#     through md5 and sha512 and writes it to a file, as an upload must;
#     it shows what loopback HTTP and the hashes in Go leave for the server.
# Downloads are measured warm (the blob in the page cache) and cold (the
# blob evicted first, as cat's file is), each with curl and with a small
# Go client that reads the body 1 MiB at a time (to tell the client's
# cost from the server's). Eviction is posix_fadvise(DONTNEED) through
# `dd iflag=nocache count=0`, unprivileged; fincore, where installed,
# checks that it left nothing resident.
# The server's peak RSS is recorded during each transfer (VmRSS sampled
# every 100 ms, and VmHWM, from /proc/PID/status).
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
#   BENCH_COLD_ROUNDS   rounds of cold reads (default 5)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
JSON_OUT=${BENCH_JSON:-$PWD/bench-datapath.json}
STEP_TIMEOUT=${BENCH_TIMEOUT:-600}
PROFILE_DIR=${BENCH_PROFILE_DIR:-}
PROFILE_SECONDS=${BENCH_PROFILE_SECONDS:-10}
COLD_ROUNDS=${BENCH_COLD_ROUNDS:-5}

log() { printf '[bench-datapath] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -gt 0 ]] || die "BENCH_SIZE_MIB must be a positive integer"
[[ $COLD_ROUNDS =~ ^[0-9]+$ && $COLD_ROUNDS -gt 0 ]] || die "BENCH_COLD_ROUNDS must be a positive integer"
for c in go curl sha512sum md5sum python3 dd sync; do
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

# evict FILE: drop FILE from the page cache (its pages must be clean:
# written back, which sync FILE makes sure of), and check that they went
# where fincore can tell. Pages that a socket still holds (sendfile's,
# just after a download) cannot be dropped until it lets them go, so the
# eviction is tried again for a while; a few MiB left are logged, more
# stop the run.
evict() {
	local res=0
	sync "$1"
	for _ in $(seq 20); do
		dd if="$1" iflag=nocache count=0 status=none
		command -v fincore >/dev/null || return 0
		res=$(fincore --bytes --noheadings --output RES "$1")
		((res == 0)) && return 0
		sleep 0.2
	done
	((res <= BYTES / 100)) || die "$1 still has $res bytes in the page cache after eviction"
	log "$1: $res bytes still in the page cache after eviction"
}

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
download_go() { # ID: the same download with the Go client
	timeout "$STEP_TIMEOUT" "$WORK/getclient" "$URL/v2/images/$1/file" "$TOKEN" "$BYTES"
}
# timed_mbps CMD...: run CMD, its output thrown away, and print its rate
# over $BYTES in MB/s
timed_mbps() {
	local t0 t1
	t0=$(now); "$@" >/dev/null; t1=$(now)
	mbps "$BYTES" "$t0" "$t1"
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

# --- the Go client -------------------------------------------------------------
mkdir -p "$WORK/client"
cat >"$WORK/client/main.go" <<'GO'
// A minimal HTTP client: GET URL [TOKEN] [BYTES], reading the body 1 MiB
// at a time into one buffer and throwing it away; fails unless the
// answer is 200 with BYTES bytes.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
)

func main() {
	req, err := http.NewRequest("GET", os.Args[1], nil)
	if err != nil {
		panic(err)
	}
	if len(os.Args) > 2 && os.Args[2] != "" {
		req.Header.Set("X-Auth-Token", os.Args[2])
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		} else if err != nil {
			panic(err)
		}
	}
	if len(os.Args) > 3 {
		if want, _ := strconv.ParseInt(os.Args[3], 10, 64); resp.StatusCode != 200 || n != want {
			fmt.Fprintf(os.Stderr, "status %d, %d bytes, want 200 and %d\n", resp.StatusCode, n, want)
			os.Exit(1)
		}
	}
}
GO
printf 'module getclient\n\ngo 1.22\n' >"$WORK/client/go.mod"
(cd "$WORK/client" && CGO_ENABLED=0 timeout "$STEP_TIMEOUT" go build -o "$WORK/getclient" .)

# --- the file and the machine's limits -----------------------------------------
FILE=$WORK/image.raw
BYTES=$((SIZE_MIB * 1024 * 1024))
log "writing $SIZE_MIB MiB of random data"
timeout "$STEP_TIMEOUT" head -c "$BYTES" /dev/urandom >"$FILE"
cat "$FILE" >/dev/null # in the page cache for the hashes and the uploads

log "measuring sha512sum, md5sum"
SHA512=$(timed_mbps timeout "$STEP_TIMEOUT" sha512sum "$FILE")
MD5=$(timed_mbps timeout "$STEP_TIMEOUT" md5sum "$FILE")
SLOWER_HASH=$(python3 -c "print(min($SHA512, $MD5))")

# --- the upload ----------------------------------------------------------------
ID=$(new_image)
log "uploading to image $ID"
start_sampler up
UPLOAD=$(timed_mbps upload "$ID")
RSS_UP=$(stop_sampler up)
BLOB=$(find "$DATA" -type f -name "$ID" -not -path '*/.staging/*')
[[ -n $BLOB ]] || die "no blob file for image $ID under $DATA"

# The reference server serves the blob itself, so that every download,
# and cat, reads the same file.
REF_PORT=$(free_port)
REF_URL=http://127.0.0.1:$REF_PORT/f
"$WORK/refserver" "127.0.0.1:$REF_PORT" "$BLOB" "$WORK/ref.stored" 2>"$WORK/ref.log" &
REF_PID=$!
for _ in $(seq 50); do
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$REF_PORT/" && break
	sleep 0.1
done
ref_put() { curl -sS --fail --max-time "$STEP_TIMEOUT" -X PUT -T "$FILE" -H 'Expect:' "$REF_URL" -o /dev/null; }
ref_get() { curl -sS --fail --max-time "$STEP_TIMEOUT" "$REF_URL" -o /dev/null; }
ref_get_go() { timeout "$STEP_TIMEOUT" "$WORK/getclient" "$REF_URL" "" "$BYTES"; }
log "uploading to the reference server"
REF_UP=$(timed_mbps ref_put)
rm -f "$WORK/ref.stored"

# --- the downloads ---------------------------------------------------------------
# Warm: the blob read into the page cache first (an upload leaves little
# of it there), then cat of it and each download in turn.
log "downloading, warm"
start_sampler down
cat "$BLOB" >/dev/null
CAT=$(timed_mbps cat "$BLOB")
DOWNLOAD=$(timed_mbps download "$ID")
DOWNLOAD_GO=$(timed_mbps download_go "$ID")
REF_DOWN=$(timed_mbps ref_get)
REF_DOWN_GO=$(timed_mbps ref_get_go)

# Cold: the blob evicted before each read. What the disk gives varies a
# lot from one read to the next (on these VMs from about 350 to 1700 MB/s
# for cat alone), so there are several rounds, each in the other order
# than the one before, and the median of each measure is kept.
log "downloading, cold ($COLD_ROUNDS rounds)"
declare -A cold=()
methods=(cat download download_go ref_get ref_get_go)
for ((round = 1; round <= COLD_ROUNDS; round++)); do
	line=
	order=("${methods[@]}")
	if ((round % 2 == 0)); then
		order=()
		for ((i = ${#methods[@]} - 1; i >= 0; i--)); do order+=("${methods[i]}"); done
	fi
	for m in "${order[@]}"; do
		evict "$BLOB"
		case $m in
		cat) rate=$(timed_mbps cat "$BLOB") ;;
		download | download_go) rate=$(timed_mbps "$m" "$ID") ;;
		*) rate=$(timed_mbps "$m") ;;
		esac
		cold[$m]+="$rate "
		line+=" $m=$rate"
	done
	log "cold round $round, MB/s:$line"
done
RSS_DOWN=$(stop_sampler down)
HWM=$(status_kib "$SERVER_PID" VmHWM)
kill "$REF_PID" 2>/dev/null; wait "$REF_PID" 2>/dev/null || true
REF_PID=
median() { python3 -c "import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }
# shellcheck disable=SC2086 # the rates are words
{
	CAT_COLD=$(median ${cold[cat]})
	DOWNLOAD_COLD=$(median ${cold[download]})
	DOWNLOAD_COLD_GO=$(median ${cold[download_go]})
	REF_DOWN_COLD=$(median ${cold[ref_get]})
	REF_DOWN_COLD_GO=$(median ${cold[ref_get_go]})
}

UP_RATIO=$(ratio "$UPLOAD" "$SLOWER_HASH")
DOWN_RATIO=$(ratio "$DOWNLOAD" "$CAT")
DOWN_COLD_RATIO=$(ratio "$DOWNLOAD_COLD" "$CAT_COLD")
DOWN_GO_RATIO=$(ratio "$DOWNLOAD_GO" "$CAT")
DOWN_COLD_GO_RATIO=$(ratio "$DOWNLOAD_COLD_GO" "$CAT_COLD")
UP_REF_RATIO=$(ratio "$UPLOAD" "$REF_UP")
DOWN_REF_RATIO=$(ratio "$DOWNLOAD" "$REF_DOWN")
DOWN_GO_REF_RATIO=$(ratio "$DOWNLOAD_GO" "$REF_DOWN_GO")
DOWN_COLD_REF_RATIO=$(ratio "$DOWNLOAD_COLD" "$REF_DOWN_COLD")
DOWN_COLD_GO_REF_RATIO=$(ratio "$DOWNLOAD_COLD_GO" "$REF_DOWN_COLD_GO")
REF_DOWN_RATIO=$(ratio "$REF_DOWN" "$CAT")
REF_DOWN_GO_RATIO=$(ratio "$REF_DOWN_GO" "$CAT")
kib_mib() { python3 -c "print('%.1f' % ($1/1024))"; }

cat <<EOF

Data path, $SIZE_MIB MiB random raw image, 127.0.0.1, $(nproc) CPUs, Go $(go env GOVERSION)
(warm: the file read is in the page cache; cold: evicted from it first, median of $COLD_ROUNDS)

| measure | MB/s | limit | limit MB/s | ratio | target |
|---|---:|---|---:|---:|---:|
| upload (PUT /v2/images/{id}/file), curl | $UPLOAD | slower of sha512sum ($SHA512) and md5sum ($MD5) | $SLOWER_HASH | $UP_RATIO | >= 0.85 |
| download (GET /v2/images/{id}/file), warm, curl | $DOWNLOAD | cat BLOB > /dev/null, warm | $CAT | $DOWN_RATIO | >= 0.80 |
| download, cold, curl | $DOWNLOAD_COLD | cat BLOB > /dev/null, cold | $CAT_COLD | $DOWN_COLD_RATIO | >= 0.80 |
| download, warm, Go client | $DOWNLOAD_GO | cat BLOB > /dev/null, warm | $CAT | $DOWN_GO_RATIO | |
| download, cold, Go client | $DOWNLOAD_COLD_GO | cat BLOB > /dev/null, cold | $CAT_COLD | $DOWN_COLD_GO_RATIO | |
| upload, curl | $UPLOAD | minimal Go server: PUT, md5 then sha512, to a file | $REF_UP | $UP_REF_RATIO | |
| download, warm, curl | $DOWNLOAD | minimal Go server: GET, http.ServeFile, warm, curl | $REF_DOWN | $DOWN_REF_RATIO | |
| download, warm, Go client | $DOWNLOAD_GO | minimal Go server, warm, Go client | $REF_DOWN_GO | $DOWN_GO_REF_RATIO | |
| download, cold, curl | $DOWNLOAD_COLD | minimal Go server, cold, curl | $REF_DOWN_COLD | $DOWN_COLD_REF_RATIO | |
| download, cold, Go client | $DOWNLOAD_COLD_GO | minimal Go server, cold, Go client | $REF_DOWN_COLD_GO | $DOWN_COLD_GO_REF_RATIO | |
| minimal Go server: download, warm, curl | $REF_DOWN | cat BLOB > /dev/null, warm | $CAT | $REF_DOWN_RATIO | |
| minimal Go server: download, warm, Go client | $REF_DOWN_GO | cat BLOB > /dev/null, warm | $CAT | $REF_DOWN_GO_RATIO | |

Cold rounds (MB/s): cat ${cold[cat]}; download, curl ${cold[download]}; download, Go client ${cold[download_go]};
minimal server, curl ${cold[ref_get]}; minimal server, Go client ${cold[ref_get_go]}

| server RSS | MiB |
|---|---:|
| before the transfers | $(kib_mib "$RSS_START") |
| peak sampled during the upload | $(kib_mib "$RSS_UP") |
| peak sampled during the downloads | $(kib_mib "$RSS_DOWN") |
| VmHWM (peak of the process's life) | $(kib_mib "$HWM") |
EOF

cat >"$JSON_OUT" <<EOF
{
  "size_bytes": $BYTES,
  "cpus": $(nproc),
  "sha512sum_mbps": $SHA512,
  "md5sum_mbps": $MD5,
  "cat_mbps": $CAT,
  "cat_cold_mbps": $CAT_COLD,
  "upload_mbps": $UPLOAD,
  "download_mbps": $DOWNLOAD,
  "download_go_mbps": $DOWNLOAD_GO,
  "download_cold_mbps": $DOWNLOAD_COLD,
  "download_cold_go_mbps": $DOWNLOAD_COLD_GO,
  "upload_vs_slower_hash": $UP_RATIO,
  "download_vs_cat": $DOWN_RATIO,
  "download_cold_vs_cat_cold": $DOWN_COLD_RATIO,
  "download_go_vs_cat": $DOWN_GO_RATIO,
  "download_cold_go_vs_cat_cold": $DOWN_COLD_GO_RATIO,
  "ref_upload_mbps": $REF_UP,
  "ref_download_mbps": $REF_DOWN,
  "ref_download_go_mbps": $REF_DOWN_GO,
  "ref_download_cold_mbps": $REF_DOWN_COLD,
  "ref_download_cold_go_mbps": $REF_DOWN_COLD_GO,
  "upload_vs_ref": $UP_REF_RATIO,
  "download_vs_ref": $DOWN_REF_RATIO,
  "download_go_vs_ref": $DOWN_GO_REF_RATIO,
  "download_cold_vs_ref": $DOWN_COLD_REF_RATIO,
  "download_cold_go_vs_ref": $DOWN_COLD_GO_REF_RATIO,
  "cold_rounds_mbps": {
    "cat": [$(echo ${cold[cat]} | tr ' ' ',')],
    "download": [$(echo ${cold[download]} | tr ' ' ',')],
    "download_go": [$(echo ${cold[download_go]} | tr ' ' ',')],
    "ref_download": [$(echo ${cold[ref_get]} | tr ' ' ',')],
    "ref_download_go": [$(echo ${cold[ref_get_go]} | tr ' ' ',')]
  },
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
