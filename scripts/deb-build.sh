#!/usr/bin/env bash
# Builds build/libnginx-mod-http-paranoid-session_<version>_<arch>.deb with
# dpkg-buildpackage and debian/ (see debian/rules) from a clean copy of the
# tree: the tracked files as they are in the working tree (uncommitted edits
# included), nothing untracked. cargo's target dir (target/deb) and the
# configured nginx-dev tree (target/debian-nginx, shared with `make
# build-debian`) stay in the checkout so that builds reuse them.
#
# The version is debian/changelog's, which must match Cargo.toml's; the
# changelog's date is SOURCE_DATE_EPOCH (dpkg-buildpackage sets it), so two
# builds of one tree give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
pkg=libnginx-mod-http-paranoid-session

cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
deb_version=$(dpkg-parsechangelog -S Version)
if [ "${deb_version%%-*}" != "$cargo_version" ]; then
    echo "deb: debian/changelog is at $deb_version, Cargo.toml at $cargo_version:" \
        "add a changelog entry (dch -v $cargo_version)" >&2
    exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=${pkg}_${deb_version}_${arch}.deb

work=$top/build/deb
src=$work/$pkg-$deb_version
rm -rf "$work"
mkdir -p "$src"
# -m: files get the current time, so cargo never takes an older checkout's
# sources for the ones it built last.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    tree=$(git stash create)
    git archive --format=tar "${tree:-HEAD}" | tar -x -m -C "$src"
else
    tar -c --exclude=./.git --exclude=./target --exclude=./build . | tar -x -m -C "$src"
fi

(
    cd "$src"
    PARANOID_DEB_TARGET_DIR=$top/target/deb \
    PARANOID_NGINX_TREE=$top/target/debian-nginx \
    CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} \
      dpkg-buildpackage -b --no-sign
)
cp "$work/$deb" "$top/build/$deb"
echo "built build/$deb"
