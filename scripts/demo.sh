#!/usr/bin/env bash
# Runs the demo in the foreground: a memcached on 127.0.0.1:11212 and nginx
# on 127.0.0.1:8080 (the page) and 127.0.0.1:8081 (the stand-in
# application) with nginx-conf/demo.conf. Ctrl-C (or SIGTERM) stops both.
#
# DEMO_PORT, DEMO_APP_PORT and DEMO_MEMCACHED_PORT move the three ports
# (the configuration is copied with them rewritten) and DEMO_PREFIX the
# nginx prefix (build/demo): scripts/demo-check.sh runs a second demo on
# free ports beside a running one.
set -euo pipefail

nginx=${1:?usage: demo.sh NGINX MODULE}
module=${2:?usage: demo.sh NGINX MODULE}
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=${DEMO_PREFIX:-$top/build/demo}
port=${DEMO_PORT:-8080}
app_port=${DEMO_APP_PORT:-8081}
memcached_port=${DEMO_MEMCACHED_PORT:-11212}

mkdir -p "$prefix/logs" "$prefix/conf" "$prefix/html"
cp "$top/nginx-conf/demo-html/index.html" "$prefix/html/"
sed -e "s/127\.0\.0\.1:8080\b/127.0.0.1:$port/g" \
    -e "s/127\.0\.0\.1:8081\b/127.0.0.1:$app_port/g" \
    -e "s/127\.0\.0\.1:11212\b/127.0.0.1:$memcached_port/g" \
    "$top/nginx-conf/demo.conf" > "$prefix/conf/nginx.conf"

user=()
[ "$(id -u)" -eq 0 ] && user=(-u root)
memcached "${user[@]}" -l 127.0.0.1 -p "$memcached_port" -U 0 -m 64 &
memcached_pid=$!

stop() {
    trap - INT TERM EXIT
    # each step may find its process gone already (set -e is on)
    if [ -n "${nginx_pid:-}" ]; then kill -QUIT "$nginx_pid" 2>/dev/null || true; fi
    kill "$memcached_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    echo "demo stopped"
}
trap stop INT TERM EXIT

globals="load_module $module; daemon off; pid $prefix/logs/nginx.pid;"
[ "$(id -u)" -eq 0 ] && globals="$globals user root;"
"$nginx" -p "$prefix/" -c conf/nginx.conf -g "$globals" -t -q
echo "demo: http://127.0.0.1:$port/ (memcached on 127.0.0.1:$memcached_port); Ctrl-C stops"
"$nginx" -p "$prefix/" -c conf/nginx.conf -g "$globals" &
nginx_pid=$!
wait "$nginx_pid"
