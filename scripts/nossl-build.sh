#!/usr/bin/env bash
# Builds (and lints) the module with cargo against an nginx configured
# without SSL and without --with-compat (only then does ngx_connection_t
# lack its `ssl` field), builds that nginx, and checks that it loads the
# module (nginx -t). Keeps the module buildable where `c->ssl` does not
# exist; see the ngx_feature cfgs in build.rs and src/https.rs.
#
# The nginx source is the one bundled by the nginx-src crate (as in
# scripts/addon-build.sh), copied and configured in $1 [target/nossl-nginx];
# the module is built in target/nossl.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tree=${1:-$top/target/nossl-nginx}
cargo=${CARGO:-cargo}
module=ngx_http_paranoid_session_module
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/nginx-src-*/nginx 2>/dev/null | sort -V | tail -n1)
[ -n "$src" ] || { echo "nossl: run 'cargo build' first (nginx-src not fetched)" >&2; exit 1; }

# Configured and built once per nginx source; `make` only relinks after.
if [ "$(cat "$tree/.source" 2>/dev/null)" != "$src" ]; then
    rm -rf "$tree"
    mkdir -p "$tree"
    cp -a "$src/." "$tree/"
    (cd "$tree" && ./auto/configure --with-http_v2_module --with-http_realip_module \
        --with-threads >configure.log 2>&1) || { tail -20 "$tree/configure.log" >&2; exit 1; }
    echo "$src" >"$tree/.source"
fi
if grep -Eq '^#define NGX_(SSL|COMPAT) ' "$tree/objs/ngx_auto_config.h"; then
    echo "nossl: $tree is configured with SSL or compat" >&2
    exit 1
fi
make -C "$tree" -j"$(nproc)" >"$tree/make.log" 2>&1 || { tail -30 "$tree/make.log" >&2; exit 1; }

export NGINX_SOURCE_DIR=$tree NGINX_BUILD_DIR=$tree/objs
flags=(--manifest-path "$top/Cargo.toml" --lib --no-default-features
    --features export-modules --target-dir "$top/target/nossl")
"$cargo" build "${flags[@]}"
# code that only this configuration compiles is linted here
"$cargo" clippy "${flags[@]}" -- -D warnings

run=$tree/run
mkdir -p "$run/logs"
cat >"$run/nginx.conf" <<CONF
load_module $top/target/nossl/debug/lib$module.so;
events {}
http {
    paranoid_session_store 127.0.0.1:11211;
    server {
        listen 127.0.0.1:8080;
        location / { paranoid_session on; paranoid_cookie_secure auto; }
    }
}
CONF
"$tree/objs/nginx" -p "$run/" -c nginx.conf -t
echo "nossl: the module built against $("$tree/objs/nginx" -v 2>&1 | sed 's/.*: //') without SSL and loaded"
