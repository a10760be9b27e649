#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests and benchmarks (STACK-NOTES-2, "Debian PostgreSQL"):
# initdb into a fresh temporary folder, owned by the unprivileged `postgres` user (initdb and
# postgres refuse root), listening on a free loopback port only.
#
#   eval "$(bash gateway/scripts/pg-cluster.sh start [--durable])"   # exports PG_CLUSTER_DIR, PG_PORT, CS_TEST_POSTGRES
#   bash gateway/scripts/pg-cluster.sh restart "$PG_CLUSTER_DIR" [S]  # a crash (stop -m immediate), S seconds down, start
#   bash gateway/scripts/pg-cluster.sh stop "$PG_CLUSTER_DIR"         # stops it and removes the folder
#
# Tests run with fsync=off (a test cluster's crash is a process crash, which fsync=off survives:
# the kernel keeps the written pages); `--durable` keeps PostgreSQL's defaults (fsync=on,
# synchronous_commit=on), which is what benchmarks measure.
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
cmd=${1:-}
case "$cmd" in
  start)
    [[ -x $bin/initdb ]] || { echo "pg-cluster: $bin/initdb missing: run gateway/scripts/setup.sh" >&2; exit 1; }
    durable=0
    [[ "${2:-}" == "--durable" ]] && durable=1
    cd /tmp  # runuser keeps the working directory; postgres must be able to enter it
    dir=$(mktemp -d /tmp/cs-pg.XXXXXX)
    chown postgres: "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400"
    if ((durable)); then
      opts+=" -c fsync=on -c synchronous_commit=on"
    else
      opts+=" -c fsync=off -c full_page_writes=off"
    fi
    echo "$opts" >"$dir/opts"
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "$opts" start >/dev/null \
      || { cat "$dir/log" >&2; exit 1; }
    echo "export PG_CLUSTER_DIR=$dir PG_PORT=$port CS_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
    ;;
  restart)
    dir=${2:?pg-cluster: restart needs the cluster folder}
    pause=${3:-0}
    cd /tmp
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null
    sleep "$pause"
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "$(cat "$dir/opts")" start >/dev/null
    ;;
  stop)
    dir=${2:?pg-cluster: stop needs the cluster folder}
    cd /tmp
    [[ -d "$dir/data" ]] && runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg-cluster.sh start [--durable] | restart DIR | stop DIR" >&2
    exit 2
    ;;
esac
