#!/usr/bin/env bash
# Prepares a configured copy of Debian's nginx source (package nginx-dev) in
# $1, configured with the flags Debian's /usr/sbin/nginx was built with, so a
# module built against it loads into that binary. Only `configure` runs:
# bindgen needs the headers and ngx_auto_config.h, not a compiled nginx.
set -euo pipefail

dest=${1:?usage: debian-nginx-tree.sh DEST}
src=/usr/share/nginx/src

if [ -f "$dest/objs/ngx_auto_config.h" ] && [ "$dest/.stamp" -nt "$src/conf_flags" ]; then
    exit 0
fi
[ -f "$src/conf_flags" ] || { echo "no $src/conf_flags: install nginx-dev" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest"
cp -a "$src/." "$dest/"
# conf_flags is a bash array assignment: NGX_CONF_FLAGS=( ... )
# shellcheck disable=SC1091
. "$src/conf_flags"
(cd "$dest" && ./configure "${NGX_CONF_FLAGS[@]}" >configure.log 2>&1) || {
    tail -20 "$dest/configure.log" >&2
    exit 1
}
touch "$dest/.stamp"
