#!/usr/bin/env bash
# Runs the demo in the foreground: a memcached on 127.0.0.1:11212 and nginx
# on 127.0.0.1:8080 with nginx-conf/demo.conf. Ctrl-C stops both.
set -euo pipefail

nginx=${1:?usage: demo.sh NGINX MODULE}
module=${2:?usage: demo.sh NGINX MODULE}
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=$top/build/demo
memcached_port=11212

mkdir -p "$prefix/logs" "$prefix/conf" "$prefix/html"
cp "$top/nginx-conf/demo-html/index.html" "$prefix/html/"
cp "$top/nginx-conf/demo.conf" "$prefix/conf/nginx.conf"

user=()
[ "$(id -u)" -eq 0 ] && user=(-u root)
memcached "${user[@]}" -l 127.0.0.1 -p "$memcached_port" -U 0 -m 64 &
memcached_pid=$!

stop() {
    trap - INT TERM EXIT
    [ -n "${nginx_pid:-}" ] && kill -QUIT "$nginx_pid" 2>/dev/null
    kill "$memcached_pid" 2>/dev/null
    wait 2>/dev/null || true
    echo "demo stopped"
}
trap stop INT TERM EXIT

globals="load_module $module; daemon off; pid $prefix/logs/nginx.pid;"
[ "$(id -u)" -eq 0 ] && globals="$globals user root;"
"$nginx" -p "$prefix/" -c conf/nginx.conf -g "$globals" -t -q
echo "demo: http://127.0.0.1:8080/ (memcached on 127.0.0.1:$memcached_port); Ctrl-C stops"
"$nginx" -p "$prefix/" -c conf/nginx.conf -g "$globals" &
nginx_pid=$!
wait "$nginx_pid"
