#!/usr/bin/env bash
# Runs `cargo build ARGS...` (cargo's own output on stderr, as usual) and
# prints on stdout the nginx `objs` directory that this build's nginx-sys
# used; with the bundled nginx, the nginx binary is objs/nginx there.
#
# build.rs passes nginx-sys's DEP_NGINX_BUILD_DIR on as
# PARANOID_NGINX_BUILD_DIR, and cargo reports it in the module's
# build-script-executed message, also when nothing had to be rebuilt. So the
# answer is the nginx of exactly this build, however many nginx-sys build
# directories target/ holds (other features, another NGINX_BUILD_DIR, an
# older toolchain); picking the newest objs/nginx by mtime could take the
# wrong one.
set -euo pipefail

cargo=${CARGO:-cargo}
dir=$("$cargo" build "$@" --message-format=json-render-diagnostics |
    sed -n 's/.*\["PARANOID_NGINX_BUILD_DIR","\([^"\\]*\)"\].*/\1/p' | tail -n1)
[ -n "$dir" ] || {
    echo "cargo-build: cargo reported no PARANOID_NGINX_BUILD_DIR (see build.rs)" >&2
    exit 1
}
printf '%s\n' "$dir"
