#!/usr/bin/env bash
# The benchmark behind `make bench` (run `cargo build --release` first).
#
# Starts its own memcached (one thread) and nginx (one worker, access_log
# off) on free loopback ports, drives them with wrk and prints one table:
# req/s, p50, p99, non-2xx responses, memcached commands per request and the
# ratio to bare nginx measured in the same run. Every scenario serves the
# same 100-byte index.html; the scenarios differ only in their location:
#
#   bare    paranoid_session off
#   steady  an existing valid session (created before wrk with one
#           request), fingerprint on, paranoid_nonce_timeout off; wrk sends
#           its Cookie header
#   nonce   paranoid_nonce_timeout 1s, paranoid_nonce_window 1; wrk follows
#           Set-Cookie with a cookie jar per wrk thread (bench/jar.lua)
#   nonce-every-request
#           paranoid_nonce_timeout 0; -t T -c C, jar.lua in "queue" mode:
#           C sessions, each with exactly one request in flight, so every
#           request presents its session's newest nonce
#   nonce-every-request-t32
#           the same location with -t C -c C and the per-thread jar: each
#           connection has its own session (and wrk a thread per
#           connection, which costs wrk itself 4x more CPU per request)
#   new     no cookie: a new session on every request
#   proxy   the steady session (paranoid_nonce_timeout off) through
#           proxy_pass to a second server{} of the same nginx (the
#           application), over upstream keepalive connections: the
#           baseline of login
#   login   the same proxy_pass, and the application's answer says
#           "X-Paranoid-Session: login user=ID": every request logs its
#           session in (a new token, the old one ended, the user's index
#           updated). ID is the session's uid (one user per session, as the
#           main server passes it upstream in X-Bench-User); jar.lua in
#           queue mode, so that each of the -c sessions presents the token
#           its last login set
#   memory  a fresh nginx; steady requests; the worker's VmRSS after 100k
#           and after 1M requests
#
# Scenarios run interleaved (bare, steady, ..., new, then again) so that
# drift of the machine hits all of them alike; medians are printed.
#
# Environment:
#   BENCH_DURATION     wrk -d per run                           [5s]
#   BENCH_RUNS         runs per scenario                        [3]
#   BENCH_CONNECTIONS  wrk -c (and nonce-every-request-t32's -t) [32]
#   BENCH_THREADS      wrk -t                                   [2]
#   BENCH_KEEPALIVE    paranoid_session_store_keepalive         [16]
#   BENCH_MEMORY_REQUESTS  request counts at which the worker's RSS is
#                      read, or "off" to skip the memory scenario
#                                                               [100000 1000000]
#   BENCH_NGINX, BENCH_MODULE  nginx binary and module
#                      [objs/nginx of the release build's nginx-sys,
#                       target/release/libngx_http_paranoid_session_module.so]
#   BENCH_KEEP=1       keep the temporary directory (configs, logs, raw wrk output)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")

duration=${BENCH_DURATION:-5s}
runs=${BENCH_RUNS:-3}
conns=${BENCH_CONNECTIONS:-32}
threads=${BENCH_THREADS:-2}
keepalive=${BENCH_KEEPALIVE:-16}
memory_points=${BENCH_MEMORY_REQUESTS:-100000 1000000}
ua="paranoid-bench/1"

if [ -z "${BENCH_NGINX:-}" ]; then
    # the nginx of the release build, as build.rs reports it (cargo has
    # nothing to do when `make bench` just built it)
    objs=$("$top/scripts/cargo-build.sh" --release --manifest-path "$top/Cargo.toml") || exit 1
    BENCH_NGINX=$objs/nginx
fi
nginx=$BENCH_NGINX
module=${BENCH_MODULE:-$top/target/release/libngx_http_paranoid_session_module.so}
[ -x "${nginx:-}" ] || { echo "bench: no nginx binary; run cargo build --release" >&2; exit 1; }
[ -f "$module" ] || { echo "bench: no $module; run cargo build --release" >&2; exit 1; }
for tool in wrk memcached python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool missing (scripts/deps.sh wrk python3)" >&2; exit 1; }
done
[ "$threads" -le "$conns" ] || { echo "bench: BENCH_THREADS > BENCH_CONNECTIONS" >&2; exit 1; }

py() { python3 "$here/bench.py" "$@"; }

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_init bench "${BENCH_KEEP:-0}"
mkdir -p "$tmp/wrk"
mapfile -t free_ports < <(bench_ports 3)
memcached_port=${free_ports[0]}
nginx_port=${free_ports[1]}
app_port=${free_ports[2]}
url="http://127.0.0.1:$nginx_port"

# Location per scenario; everything else is shared. The three headers are on
# every location (bare too, where they are empty and not sent), so each
# scenario pays for them: X-Session-Status, X-Bench-Set-Cookie (all the
# Set-Cookie lines in one) and X-Bench-Cookie (the request's Cookie header,
# for jar.lua's queue mode) are read by the cookie-jar scenarios.
cat > "$tmp/conf/nginx.conf" <<EOF
$root_user
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
daemon off;
load_module $module;

events {
    worker_connections 4096;
}

http {
    access_log off;
    default_type text/html;
    keepalive_requests 1000000;

    paranoid_session_store 127.0.0.1:$memcached_port;
    # The directive's default: commands are pipelined, so one connection
    # carries all of a worker's exchanges whatever the client concurrency.
    paranoid_session_store_keepalive $keepalive;
    paranoid_session_secret_file paranoid.key;
    paranoid_on_violation deny;     # a violation is a 403: counted as non-2xx

    # The application of the proxy and login scenarios: the second server
    # below, over keepalive connections.
    upstream app {
        server 127.0.0.1:$app_port;
        keepalive 64;
    }

    server {
        listen 127.0.0.1:$app_port;
        root html;

        location /proxy/ {
            try_files /index.html =404;
        }
        location /login/ {
            add_header X-Paranoid-Session "login user=u\$http_x_bench_user";
            try_files /index.html =404;
        }
    }

    server {
        listen 127.0.0.1:$nginx_port;
        root html;
        add_header X-Session-Status \$paranoid_session_status always;
        add_header X-Bench-Set-Cookie \$sent_http_set_cookie always;
        add_header X-Bench-Cookie \$http_cookie always;

        location /bare/ {
            paranoid_session off;
            try_files /index.html =404;
        }
        location /steady/ {
            paranoid_session on;
            paranoid_nonce_timeout off;
            try_files /index.html =404;
        }
        location /nonce/ {
            paranoid_session on;
            paranoid_nonce_timeout 1s;
            paranoid_nonce_window 1;
            try_files /index.html =404;
        }
        location /nonce-every-request/ {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            try_files /index.html =404;
        }
        location /new/ {
            paranoid_session on;
            try_files /index.html =404;
        }
        location /proxy/ {
            paranoid_session on;
            paranoid_nonce_timeout off;
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /login/ {
            paranoid_session on;
            paranoid_nonce_timeout off;
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Bench-User \$paranoid_session_uid;
        }
    }
}
EOF

start_memcached() {
    bench_start_memcached stats -m 1024 -c 4096
}

nginx_ready() {
    [ -n "$(worker_pid)" ] && py status "$url/bare/" "$ua" ""
}

start_nginx() {
    bench_start_nginx nginx_ready
}

worker_pid() {
    local c
    for c in $(cat "/proc/$nginx_pid/task/$nginx_pid/children" 2>/dev/null); do
        echo "$c"
        return
    done
}

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# run_wrk NAME RUN WRK-ARGS...: one wrk run, recorded with the delta of
# memcached's stats around it.
run_wrk() {
    local name=$1 run=$2
    shift 2
    local out="$tmp/wrk/$name.$run"
    py stats "$memcached_port" > "$out.before"
    wrk --latency -H "User-Agent: $ua" "$@" > "$out" 2>&1 &
    client_pid=$!
    wait "$client_pid" || { cat "$out" >&2; exit 1; }
    client_pid=""
    py stats "$memcached_port" > "$out.after"
    if [ "$run" != warmup ]; then
        py record "$tmp/results.jsonl" "$name" "$run" "$out" "$out.before" "$out.after"
    fi
}

run_scenario() {
    local name=$1 run=$2 d=${3:-$duration}
    case $name in
        bare)
            run_wrk bare "$run" -t"$threads" -c"$conns" -d"$d" "$url/bare/" ;;
        steady)
            run_wrk steady "$run" -t"$threads" -c"$conns" -d"$d" \
                -H "Cookie: $steady_cookie" "$url/steady/" ;;
        nonce)
            run_wrk nonce "$run" -t"$threads" -c"$conns" -d"$d" \
                -s "$here/jar.lua" "$url/nonce/" ;;
        nonce-every-request)
            run_wrk nonce-every-request "$run" -t"$threads" -c"$conns" -d"$d" \
                -s "$here/jar.lua" "$url/nonce-every-request/" -- queue ;;
        nonce-every-request-t32)
            run_wrk nonce-every-request-t32 "$run" -t"$conns" -c"$conns" -d"$d" \
                -s "$here/jar.lua" "$url/nonce-every-request/" ;;
        new)
            run_wrk new "$run" -t"$threads" -c"$conns" -d"$d" "$url/new/" ;;
        proxy)
            run_wrk proxy "$run" -t"$threads" -c"$conns" -d"$d" \
                -H "Cookie: $steady_cookie" "$url/proxy/" ;;
        login)
            run_wrk login "$run" -t"$threads" -c"$conns" -d"$d" \
                -s "$here/jar.lua" "$url/login/" -- queue ;;
    esac
}

started=$(date +%s)
echo "bench: $("$nginx" -v 2>&1), $(memcached -V), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1,2)"
echo "bench: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "bench: wrk -t$threads -c$conns -d$duration, $runs runs per scenario; nonce-every-request-t32: -t$conns -c$conns"

start_memcached
start_nginx

# The steady scenario's session, created by one request (same User-Agent as
# wrk: it is part of the fingerprint), then checked.
steady_cookie=$(py session "$url/steady/" "$ua")
check=$(py status "$url/steady/" "$ua" "$steady_cookie")
[ "$check" = "200 valid" ] || { echo "bench: steady session not valid: $check" >&2; exit 1; }
check=$(py status "$url/proxy/" "$ua" "$steady_cookie")
[ "$check" = "200 valid" ] || { echo "bench: steady session not valid through the proxy: $check" >&2; exit 1; }
# A login on a session of its own (a first request: new, then rotated).
check=$(py status "$url/login/" "$ua" "")
[ "$check" = "200 rotated" ] || { echo "bench: login not applied: $check" >&2; exit 1; }

scenarios=(bare steady nonce nonce-every-request nonce-every-request-t32 new proxy login)
echo "bench: warm-up"
for s in "${scenarios[@]}"; do
    run_scenario "$s" warmup 1s
done
for run in $(seq "$runs"); do
    for s in "${scenarios[@]}"; do
        echo "bench: run $run/$runs $s"
        run_scenario "$s" "$run"
    done
done

# Memory: a fresh worker, steady requests, VmRSS at each count. wrk runs
# for as long as the steady rate says the next count needs (at least 1 s),
# again if it fell short; the counts printed are the real ones.
memory_json=""
if [ "$memory_points" != off ]; then
    bench_stop_nginx
    start_nginx
    pid=$(worker_pid)
    rate=$(py median "$tmp/results.jsonl" steady)
    [ "$rate" -gt 0 ] || rate=1000
    done_requests=0
    chunk=0
    points=""
    for target in $memory_points; do
        while [ "$done_requests" -lt "$target" ]; do
            chunk=$((chunk + 1))
            [ "$chunk" -le 50 ] || { echo "bench: memory scenario does not progress" >&2; exit 1; }
            secs=$(( (target - done_requests + rate - 1) / rate ))
            [ "$secs" -ge 1 ] || secs=1
            echo "bench: memory: $done_requests requests so far, wrk for ${secs}s towards $target"
            run_wrk memory "$chunk" -t"$threads" -c"$conns" -d"${secs}s" \
                -H "Cookie: $steady_cookie" "$url/steady/"
            n=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$tmp/wrk/memory.$chunk")
            done_requests=$((done_requests + n))
        done
        points="$points${points:+,}{\"requests\": $done_requests, \"rss_kib\": $(rss_kib "$pid")}"
    done
    respawned=false
    [ "$(worker_pid)" = "$pid" ] || respawned=true
    memory_json="$tmp/memory.json"
    echo "{\"pid\": $pid, \"respawned\": $respawned, \"points\": [$points]}" > "$memory_json"
fi

echo
echo "nginx $("$nginx" -v 2>&1 | sed 's|.*nginx/||'), $(nproc) CPUs ($(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "wrk -t$threads -c$conns -d$duration (nonce-every-request-t32: -t$conns -c$conns), $runs runs"
echo
py table "$tmp/results.jsonl" $memory_json

# Anything nginx logged (violations at warn, store errors at error).
if [ -s "$tmp/logs/error.log" ]; then
    echo
    echo "nginx error log: $(wc -l < "$tmp/logs/error.log") lines; by level:" \
        "$(grep -oE '\[(emerg|alert|crit|error|warn)\]' "$tmp/logs/error.log" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
    head -n 5 "$tmp/logs/error.log" | cut -c1-300
fi
echo
echo "bench: done in $(( $(date +%s) - started ))s"
