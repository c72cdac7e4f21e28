#!/bin/sh
# A throwaway PostgreSQL 15 cluster for `make bench-postgres`, made the way
# testkit/src/postgres.rs makes one: initdb as the postgres user (initdb refuses
# root) in DIR, listening on 127.0.0.1:PORT (scram-sha-256) and on a unix socket in DIR
# (trusted, for the setup). Database totp owned by the admin role totp_admin; a host
# login role totp_host whose password is in the root-only file DIR.pass; the at-rest
# key in the data directory, readable through pg_read_file by totp_admin.
#
#   scripts/pg-cluster.sh start DIR PORT
#   scripts/pg-cluster.sh stop DIR       (stops the server and removes DIR and DIR.pass)
set -eu
BIN=/usr/lib/postgresql/15/bin
as_postgres() { runuser -u postgres -- "$@"; }

case "${1:-}" in
start)
    dir=$(realpath -m "$2") port=$3
    test -x "$BIN/initdb" || { echo "PostgreSQL 15 is not installed (apt-get install postgresql)" >&2; exit 1; }
    rm -rf "$dir"
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    as_postgres "$BIN/initdb" -D "$dir/data" --auth-local=trust --auth-host=scram-sha-256 \
        --username=postgres --no-instructions >/dev/null
    as_postgres "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" >/dev/null
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    umask 077
    printf '%s\n' "$password" >"$dir.pass"
    as_postgres "$BIN/psql" -q -h "$dir" -p "$port" -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE totp_admin LOGIN CREATEROLE" \
        -c "CREATE DATABASE totp OWNER totp_admin" \
        -c "CREATE ROLE totp_host LOGIN PASSWORD '$password'"
    # The key the database encrypts secrets under (schema version 3; docs/guide.md).
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/data/pam_totp_secret.key"
    chown postgres:postgres "$dir/data/pam_totp_secret.key"
    as_postgres "$BIN/psql" -q -h "$dir" -p "$port" -d totp -v ON_ERROR_STOP=1 \
        -c "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO totp_admin"
    ;;
stop)
    dir=$(realpath -m "$2")
    if [ -d "$dir/data" ]; then
        as_postgres "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir" "$dir.pass"
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
