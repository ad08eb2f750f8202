#!/usr/bin/env bash
# What sessions cost memcached, and what a flood of cookie-less requests does
# to it. Repeatable: every case starts its own memcached (one thread) and
# nginx (one worker, access_log off) on free loopback ports and stops them;
# the client is bench/store_memory.py (python3 standard library, keep-alive
# connections, pipelined for the flood).
#
# 1. Bytes per session. For each case, a fresh memcached (-m 1024, nothing
#    is evicted) and STORE_SESSIONS sessions made by requests to one
#    location; then memcached's `stats` (bytes, curr_items, hash_bytes) and
#    `stats slabs` (the slab class the records land in: its chunk size is
#    what one record really occupies):
#
#      new        paranoid_session on, defaults: one cookie-less request
#                 (fingerprint + nonce, no previous nonce: a 108-byte value)
#      minimal    paranoid_fingerprint off; paranoid_nonce_timeout off
#                 (36 bytes, the smallest record)
#      window1    the defaults after a renewal: paranoid_nonce_timeout 0,
#                 2 requests (one previous nonce: 148 bytes)
#      window3    paranoid_nonce_window 3, paranoid_nonce_timeout 0,
#                 4 requests (three previous nonces: 228 bytes)
#      window16   paranoid_nonce_window 16, paranoid_nonce_timeout 0,
#                 17 requests (the largest record over HTTP: 748 bytes;
#                 HTTPS adds a 32-byte secure key to every case)
#
# 2. A flood. A fresh memcached with -m STORE_FLOOD_MB (and
#    STORE_FLOOD_MEMCACHED_OPTIONS). Before the flood, on the defaults:
#      active          STORE_ACTIVE sessions of 3 requests
#      idle            STORE_IDLE sessions of 3 requests within a second
#                      (fetched twice, never renewed: 108 B, the size of
#                      the flood's records), in STORE_FLOOD_PARTS groups
#      idle renewed    STORE_IDLE_RENEWED sessions whose nonce was renewed
#                      (2 requests to the window1 location: 148 B, like a
#                      default session after its first second), in
#                      STORE_FLOOD_PARTS groups
#    Then STORE_FLOOD cookie-less requests (each stores a session that is
#    never read again) in STORE_FLOOD_PARTS parts, while every active
#    session is requested once every STORE_ACTIVE_INTERVAL seconds (each
#    request renews its nonce). After part i, idle group i and idle renewed
#    group i are requested once: a session whose cookies come back `new`
#    lost its record. Reported: the flood's rate, how many records fit, how
#    often the flood replaces them all, memcached's LRU evictions (and how
#    many of those records had been fetched), the slab pages memcached's
#    automover took from other slab classes (and the records evicted with
#    them), and the sessions lost.
#
# Takes about 1 to 2 minutes (the flood runs at 20,000 to 40,000 req/s
# with a release build on 2 CPUs; `PROFILE=release make build` puts one in
# build/vendored).
#
# Environment:
#   STORE_SESSIONS         sessions per case in part 1            [20000]
#   STORE_FLOOD_MB         memcached -m for the flood              [64]
#   STORE_FLOOD_MEMCACHED_OPTIONS  more memcached options for the
#                          flood, e.g. "-o slab_automove=0"        []
#   STORE_FLOOD            requests of the flood                   [1200000]
#   STORE_FLOOD_PARTS      parts of the flood                      [4]
#   STORE_ACTIVE           active sessions                         [1000]
#   STORE_ACTIVE_INTERVAL  seconds between two requests of one
#                          active session                          [2]
#   STORE_IDLE             idle sessions                           [1000]
#   STORE_IDLE_RENEWED     idle renewed sessions                   [20000]
#   STORE_CONNECTIONS      client connections                      [16]
#   STORE_NGINX, STORE_MODULE  nginx binary and module
#                          [build/vendored/nginx and its module: make build]
#   STORE_KEEP=1           keep the temporary directory
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")

n_sessions=${STORE_SESSIONS:-20000}
flood_mb=${STORE_FLOOD_MB:-64}
flood=${STORE_FLOOD:-1200000}
n_active=${STORE_ACTIVE:-1000}
active_interval=${STORE_ACTIVE_INTERVAL:-2}
n_idle=${STORE_IDLE:-1000}
n_idle_renewed=${STORE_IDLE_RENEWED:-20000}
segments=${STORE_FLOOD_PARTS:-4}
conns=${STORE_CONNECTIONS:-16}
flood_opts=${STORE_FLOOD_MEMCACHED_OPTIONS:-}

nginx=${STORE_NGINX:-$top/build/vendored/nginx}
module=${STORE_MODULE:-$top/build/vendored/ngx_http_paranoid_session_module.so}
[ -x "$nginx" ] || { echo "store-memory: no $nginx; run make build" >&2; exit 1; }
[ -f "$module" ] || { echo "store-memory: no $module; run make build" >&2; exit 1; }
for tool in memcached python3; do
    command -v "$tool" >/dev/null || { echo "store-memory: $tool missing" >&2; exit 1; }
done

py() { python3 "$here/store_memory.py" "$@"; }

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_init store-memory "${STORE_KEEP:-0}"
mapfile -t free_ports < <(bench_ports 2)
memcached_port=${free_ports[0]}
nginx_port=${free_ports[1]}
url="http://127.0.0.1:$nginx_port"

cat > "$tmp/conf/nginx.conf" <<EOF
$root_user
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
daemon off;
load_module $module;

events {
    worker_connections 1024;
}

http {
    access_log off;
    default_type text/html;
    keepalive_requests 10000000;

    paranoid_session_store 127.0.0.1:$memcached_port;
    paranoid_session_secret_file paranoid.key;

    server {
        listen 127.0.0.1:$nginx_port;
        root html;
        add_header X-Session-Status \$paranoid_session_status always;

        location = /ping {
            return 204;
        }
        location /new/ {
            paranoid_session on;
            try_files /index.html =404;
        }
        location /minimal/ {
            paranoid_session on;
            paranoid_fingerprint off;
            paranoid_nonce_timeout off;
            try_files /index.html =404;
        }
        location /window1/ {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            try_files /index.html =404;
        }
        location /window3/ {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_nonce_window 3;
            try_files /index.html =404;
        }
        location /window16/ {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_nonce_window 16;
            try_files /index.html =404;
        }
    }
}
EOF

# start_memcached MEGABYTES [OPTION...]
start_memcached() {
    local mb=$1
    shift
    bench_start_memcached mc -m "$mb" -c 1024 "$@"
}

start_nginx() {
    bench_start_nginx python3 "$here/bench.py" status "$url/ping" x ""
}

stop_all() {
    bench_stop_nginx
    bench_stop_memcached
}

started=$(date +%s)
echo "store-memory: $("$nginx" -v 2>&1), $(memcached -V), $(nproc) CPUs"

# --- 1. bytes per session -------------------------------------------------

# NAME REQUESTS VALUE SESSIONS: VALUE is the record's length in bytes by
# core/src/record.rs; window16 makes a quarter of the sessions (17 requests
# each), enough to fill many slab pages.
cases=(
    "new 1 108 $n_sessions"
    "minimal 1 36 $n_sessions"
    "window1 2 148 $n_sessions"
    "window3 4 228 $n_sessions"
    "window16 17 748 $((n_sessions / 4))"
)
for c in "${cases[@]}"; do
    read -r name reqs value n <<<"$c"
    start_memcached 1024
    start_nginx
    echo "store-memory: $name: $n sessions of $reqs request(s)"
    py sessions "$url/$name/" "$n" "$conns" "$reqs" "$tmp/$name.jars" > "$tmp/$name.client"
    py mc "$memcached_port" > "$tmp/$name.mc"
    stop_all
    echo "$c" >> "$tmp/cases"
done

# --- 2. the flood ---------------------------------------------------------

# shellcheck disable=SC2086 # options, split on purpose
start_memcached "$flood_mb" $flood_opts
start_nginx
per_group=$((n_idle / segments))
per_renewed=$((n_idle_renewed / segments))
echo "store-memory: flood: $n_active active sessions; $segments groups of $per_group" \
    "idle sessions and $segments groups of $per_renewed idle renewed sessions"
py sessions "$url/new/" "$n_active" "$conns" 3 "$tmp/active.jars" > "$tmp/active.client"
for i in $(seq "$segments"); do
    py sessions "$url/new/" "$per_group" "$conns" 3 "$tmp/idle.$i.jars" > "$tmp/idle.$i.client"
    py sessions "$url/window1/" "$per_renewed" "$conns" 2 "$tmp/idler.$i.jars" > "$tmp/idler.$i.client"
done
py mc "$memcached_port" > "$tmp/flood.0.mc"
py keep "$url/new/" "$tmp/active.jars" "$active_interval" "$tmp/stop" 4 > "$tmp/active.keep" &
client_pid=$!
echo "store-memory: flood: $flood cookie-less requests in $segments parts," \
    "memcached -m $flood_mb, active sessions requested every ${active_interval}s;" \
    "after part i, idle groups i are requested once"
for i in $(seq "$segments"); do
    py flood "$url/new/" $((flood / segments)) "$conns" 32 > "$tmp/flood.$i.client"
    py check "$url/new/" "$tmp/idle.$i.jars" "$conns" > "$tmp/idle.$i.check"
    py check "$url/window1/" "$tmp/idler.$i.jars" "$conns" > "$tmp/idler.$i.check"
    py mc "$memcached_port" > "$tmp/flood.$i.mc"
done
touch "$tmp/stop"
wait "$client_pid"
client_pid=""
stop_all

# --- report ---------------------------------------------------------------

py report "$tmp" "$flood_mb" "$active_interval" "$segments"

if [ -s "$tmp/logs/error.log" ]; then
    echo
    echo "nginx error log: $(wc -l < "$tmp/logs/error.log") lines"
    head -n 5 "$tmp/logs/error.log" | cut -c1-300
fi
echo
echo "store-memory: done in $(( $(date +%s) - started ))s"
