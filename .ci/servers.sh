# Servers for the integration tests, sourced by .ci/run: PostgreSQL 15
# from Debian's packages and MinIO built from the Go module proxy, each
# in a temporary directory, listening on 127.0.0.1 only.
#
#	. .ci/servers.sh
#	trap stop_servers EXIT
#	start_servers	# exports CLOUDIMAGE_TEST_POSTGRES, CLOUDIMAGE_TEST_S3,
#			# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
#
# Ports: CI_PG_PORT (25432) and CI_S3_PORT (29000, and the next one for
# MinIO's console), below Linux's ephemeral range (32768-60999), so that no
# outgoing connection of the machine can hold them when the servers start.
# Needs bash, curl, go and the postgresql package; runs PostgreSQL as the postgres user when
# run as root.

CI_PG_PORT="${CI_PG_PORT:-25432}"
CI_S3_PORT="${CI_S3_PORT:-29000}"
CI_S3_BUCKET="${CI_S3_BUCKET:-cloudimage-ci}"
MINIO_MODULE=github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c

CI_SERVERS_DIR=""
CI_MINIO_PID=""

# port_free PORT: fails if something listens on 127.0.0.1:PORT.
port_free() {
	if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
		echo "servers: 127.0.0.1:$1 is in use" >&2
		return 1
	fi
}

# servers_dir: the temporary directory the servers keep their data in.
servers_dir() {
	if [ -z "$CI_SERVERS_DIR" ]; then
		CI_SERVERS_DIR="$(mktemp -d /tmp/cloudimage-ci.XXXXXX)" || return 1
		chmod 755 "$CI_SERVERS_DIR" || return 1 # the postgres user works inside
	fi
}

# as_postgres CMD...: runs CMD as the postgres user (initdb refuses root).
as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
	else
		"$@"
	fi
}

pg_bin() {
	local d
	for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	echo "servers: no PostgreSQL server binaries (apt-get install postgresql)" >&2
	return 1
}

# start_postgres: a new cluster with trust authentication on
# 127.0.0.1:CI_PG_PORT; exports CLOUDIMAGE_TEST_POSTGRES.
start_postgres() {
	local bin data
	bin="$(pg_bin)" || return 1
	port_free "$CI_PG_PORT" || return 1
	servers_dir || return 1
	data="$CI_SERVERS_DIR/pg"
	mkdir "$data" || return 1
	if [ "$(id -u)" = 0 ]; then chown postgres: "$data" || return 1; fi
	as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$CI_SERVERS_DIR/initdb.log" 2>&1 ||
		{ cat "$CI_SERVERS_DIR/initdb.log" >&2; return 1; }
	# A throwaway database: no fsync; room for tests that run in parallel.
	as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
		-o "-k $data -c listen_addresses=127.0.0.1 -p $CI_PG_PORT -c fsync=off -c max_connections=200" start >/dev/null ||
		{ cat "$data/server.log" >&2; return 1; }
	export CLOUDIMAGE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$CI_PG_PORT/postgres?sslmode=disable"
	echo "servers: PostgreSQL on 127.0.0.1:$CI_PG_PORT"
}

# minio_bin: the MinIO server, built from the module proxy unless it is
# installed already (about 8 minutes).
minio_bin() {
	local bin
	if bin="$(command -v minio)"; then
		echo "$bin"
		return 0
	fi
	bin="$(go env GOPATH)/bin/minio"
	if [ ! -x "$bin" ]; then
		echo "servers: building $MINIO_MODULE (about 8 minutes)" >&2
		(cd / && GOFLAGS=-mod=mod go install "$MINIO_MODULE") >&2 || return 1
	fi
	echo "$bin"
}

# start_minio: MinIO on 127.0.0.1:CI_S3_PORT with a random root
# password and the bucket CI_S3_BUCKET; exports CLOUDIMAGE_TEST_S3,
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
start_minio() {
	local bin user pass url i
	bin="$(minio_bin)" || return 1
	port_free "$CI_S3_PORT" || return 1
	port_free "$((CI_S3_PORT + 1))" || return 1
	servers_dir || return 1
	mkdir "$CI_SERVERS_DIR/minio" || return 1
	user=cloudimage-ci
	pass="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	MINIO_ROOT_USER="$user" MINIO_ROOT_PASSWORD="$pass" MINIO_BROWSER=off MINIO_UPDATE=off \
		"$bin" server "$CI_SERVERS_DIR/minio/data" --quiet \
		--address "127.0.0.1:$CI_S3_PORT" --console-address "127.0.0.1:$((CI_S3_PORT + 1))" \
		>"$CI_SERVERS_DIR/minio/server.log" 2>&1 &
	CI_MINIO_PID=$!
	url="http://127.0.0.1:$CI_S3_PORT"
	for i in $(seq 600); do
		if curl -sf -o /dev/null "$url/minio/health/live"; then
			break
		fi
		if ! kill -0 "$CI_MINIO_PID" 2>/dev/null || [ "$i" = 600 ]; then
			echo "servers: MinIO did not start:" >&2
			cat "$CI_SERVERS_DIR/minio/server.log" >&2
			return 1
		fi
		sleep 0.1
	done
	# curl signs the request itself (AWS signature version 4).
	curl -sf -o /dev/null -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$user:$pass" "$url/$CI_S3_BUCKET" ||
		{ echo "servers: could not create bucket $CI_S3_BUCKET" >&2; return 1; }
	export AWS_ACCESS_KEY_ID="$user" AWS_SECRET_ACCESS_KEY="$pass"
	export CLOUDIMAGE_TEST_S3="s3://$CI_S3_BUCKET?endpoint=127.0.0.1:$CI_S3_PORT&region=us-east-1&insecure=true"
	echo "servers: MinIO on 127.0.0.1:$CI_S3_PORT, bucket $CI_S3_BUCKET"
}

# The functions return non-zero on failure rather than rely on set -e,
# which bash ignores in a function called from a condition.
start_servers() {
	start_postgres || return 1
	start_minio || return 1
}

# stop_servers: stops what start_servers started and removes its data;
# safe to call more than once and after a partial start.
stop_servers() {
	local bin
	if [ -n "$CI_MINIO_PID" ]; then
		kill "$CI_MINIO_PID" 2>/dev/null || true
		wait "$CI_MINIO_PID" 2>/dev/null || true
		CI_MINIO_PID=""
	fi
	if [ -n "$CI_SERVERS_DIR" ]; then
		if [ -f "$CI_SERVERS_DIR/pg/postmaster.pid" ] && bin="$(pg_bin)"; then
			as_postgres "$bin/pg_ctl" -D "$CI_SERVERS_DIR/pg" -m fast -w stop >/dev/null || true
		fi
		rm -rf "$CI_SERVERS_DIR"
		CI_SERVERS_DIR=""
	fi
}
