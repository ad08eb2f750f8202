#!/usr/bin/env bash
# Builds the module the way nginx's own build system does
#   ./configure --with-compat --add-dynamic-module=<this repository>
# in a copy of the nginx source bundled by the nginx-src crate, then checks
# that the resulting nginx loads the resulting .so (nginx -t).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$top/target/addon}
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/nginx-src-*/nginx 2>/dev/null | sort -V | tail -n1)
[ -n "$src" ] || { echo "addon: run 'cargo build' first (nginx-src not fetched)" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
cp -a "$src/." "$work/src/"
cd "$work/src"
./auto/configure --with-compat --with-http_ssl_module --with-http_v2_module \
    --with-http_realip_module --with-threads \
    --add-dynamic-module="$top" >"$work/configure.log" 2>&1
make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log"; exit 1; }

mkdir -p "$work/run/logs"
cat >"$work/run/nginx.conf" <<CONF
load_module $work/src/objs/ngx_http_paranoid_session_module.so;
events {}
http {
    paranoid_session_store 127.0.0.1:11211;
    server {
        listen 127.0.0.1:8080;
        location / { paranoid_session on; }
    }
}
CONF
objs/nginx -p "$work/run/" -c nginx.conf -t
echo "addon: objs/ngx_http_paranoid_session_module.so built by nginx's configure and loaded"
