#!/bin/sh
# A throwaway host-local PgBouncer for `make bench-postgres-pgbouncer`, configured from
# the shipped packaging/pgbouncer/ files with the benchmark's paths: run as postgres
# (PgBouncer refuses root), listening only on a unix socket in DIR, root admitted by
# peer authentication, pooling connections of the role totp_host (its password from
# the root-only PASSFILE, as scripts/pg-cluster.sh made it) to the cluster on
# 127.0.0.1:PORT. Like the direct run, that link is plaintext on loopback: TLS would
# only cost the pool's few connections, not a login's.
#
#   scripts/pg-bouncer.sh start DIR PORT PASSFILE
#   scripts/pg-bouncer.sh stop DIR       (stops PgBouncer and removes DIR)
set -eu
shipped=$(dirname "$0")/../packaging/pgbouncer

case "${1:-}" in
start)
    dir=$(realpath -m "$2") port=$3 passfile=$4
    command -v pgbouncer >/dev/null || { echo "PgBouncer is not installed (apt-get install pgbouncer)" >&2; exit 1; }
    rm -rf "$dir"
    mkdir -p "$dir"
    sed -e "s#^totp = .*#totp = host=127.0.0.1 port=$port dbname=totp user=totp_host#" \
        -e "s#^unix_socket_dir = .*#unix_socket_dir = $dir#" \
        -e "s#/etc/pgbouncer/#$dir/#" \
        -e "s#^server_tls_sslmode = .*#server_tls_sslmode = disable#" \
        -e "/^server_tls_ca_file/d" \
        -e "s#^logfile = .*#logfile = $dir/pgbouncer.log#" \
        -e "s#^pidfile = .*#pidfile = $dir/pgbouncer.pid#" \
        "$shipped/pgbouncer.ini" >"$dir/pgbouncer.ini"
    cp "$shipped/pam_totp_hba.conf" "$dir/"
    (umask 077; printf '"totp_host" "%s"\n"root" ""\n' "$(head -n 1 "$passfile")" >"$dir/pam_totp_userlist.txt")
    chown -R postgres:postgres "$dir"
    runuser -u postgres -- pgbouncer -d "$dir/pgbouncer.ini"
    for _ in $(seq 50); do
        [ -S "$dir/.s.PGSQL.6432" ] && exit 0
        sleep 0.1
    done
    echo "PgBouncer did not start: $(tail -n 5 "$dir/pgbouncer.log")" >&2
    exit 1
    ;;
stop)
    dir=$(realpath -m "$2")
    if [ -f "$dir/pgbouncer.pid" ]; then
        pid=$(cat "$dir/pgbouncer.pid")
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start DIR PORT PASSFILE | stop DIR" >&2
    exit 2
    ;;
esac
