#!/usr/bin/env bash
# make test-deb: the package of `make deb` installed the way operators
# install Debian's nginx modules, then removed and purged.
#
#   1. lintian: no errors (E:); the rest is printed.
#   2. apt-get install ./build/<package>.deb into this machine's nginx: the
#      module, its snippet and the modules-enabled link are in place, and
#      nginx -t passes with the stock /etc/nginx/nginx.conf, which loads it.
#   3. A separate nginx (its own prefix in a temporary directory, a free
#      loopback port; never the system service or port 80) loads the
#      installed module and issues a session stored in a memcached of its
#      own: status new with Set-Cookie, then valid.
#   4. apt-get remove, then purge: nothing of the package is left, and the
#      module directories are as they were before.
#
# Needs root (apt). Refuses to run when the package is already installed,
# since it could not put that installation back. Whatever happens, the
# package is purged, and the processes started here are stopped, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=libnginx-mod-http-paranoid-session
module=ngx_http_paranoid_session_module
so=/usr/lib/nginx/modules/$module.so
snippet=/usr/share/nginx/modules-available/mod-http-paranoid-session.conf
link=/etc/nginx/modules-enabled/50-mod-http-paranoid-session.conf
watched=(/usr/lib/nginx/modules /usr/share/nginx/modules-available /etc/nginx/modules-enabled)

version=$(dpkg-parsechangelog -S Version)
deb=build/${pkg}_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
[ -f "$deb" ] || { echo "test-deb: no $deb (make deb)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "test-deb: run as root (it installs $deb)" >&2; exit 1; }

state() { dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || echo not-installed; }
if [ "$(state)" != not-installed ]; then
    echo "test-deb: $pkg is already on this machine ($(state)): purge it first" >&2
    exit 1
fi

failures=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)
tmp=$(mktemp -d /tmp/test-deb.XXXXXX)
nginx_pid=
memcached_pid=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$nginx_pid" ]; then
        kill -QUIT "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    if [ -n "$memcached_pid" ]; then
        kill "$memcached_pid" 2>/dev/null || true
        wait "$memcached_pid" 2>/dev/null || true
    fi
    if [ "$(state)" != not-installed ]; then
        echo "test-deb: purging $pkg"
        "${apt[@]}" purge "$pkg" >/dev/null || rc=1
    fi
    if [ "$rc" -ne 0 ] && [ -s "$tmp/prefix/logs/error.log" ]; then
        echo "--- error.log of the test nginx" >&2
        tail -n 30 "$tmp/prefix/logs/error.log" >&2
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

listing() { find "${watched[@]}" -mindepth 1 -printf '%p %y %l\n' | sort; }
listing >"$tmp/before"

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}
wait_port() { # wait_port PORT: up to 10 s
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

echo "# lintian $deb"
lintian "$deb" 2>&1 | grep -v '^running with root privileges' | tee "$tmp/lintian" || true
check "lintian reports no errors" bash -c "! grep -q '^E:' '$tmp/lintian'"
check "Depends on the ABI of the nginx it was built for ($(dpkg-deb -f "$deb" Depends))" \
    bash -c "dpkg-deb -f '$deb' Depends | grep -Eq '(^|, )nginx-abi-[0-9]'"

echo "# apt-get install ./$deb"
"${apt[@]}" install --no-install-recommends "./$deb" >"$tmp/apt.log" 2>&1 \
    || { cat "$tmp/apt.log"; not_ok "apt-get install"; exit 1; }
check "installed" test "$(state)" = installed
check "$so" test -f "$so"
check "$snippet loads it" \
    grep -qx "load_module modules/$module.so;" "$snippet"
check "$link enables it" test "$(readlink "$link")" = "$snippet"
check "nginx -t with the stock /etc/nginx/nginx.conf" nginx -t -q
check "that configuration loads the module" \
    bash -c "nginx -T 2>/dev/null | grep -qx 'load_module modules/$module.so;'"

echo "# a separate nginx loading $so"
prefix=$tmp/prefix
mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/html" "$prefix/temp"
echo ok >"$prefix/html/index.html"
memcached_port=$(free_port)
http_port=$(free_port)
# As root (checked above): the workers run as root too, to read $prefix.
memcached -u root -l 127.0.0.1 -p "$memcached_port" -U 0 -m 16 &
memcached_pid=$!
cat >"$prefix/conf/nginx.conf" <<EOF
load_module $so;
daemon off;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log info;
user root;
events {
    worker_connections 64;
}
http {
    access_log off;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    paranoid_session_store 127.0.0.1:$memcached_port;
    server {
        listen 127.0.0.1:$http_port;
        root html;
        location / {
            paranoid_session on;
            add_header X-Session-Status \$paranoid_session_status always;
        }
    }
}
EOF
wait_port "$memcached_port" || { not_ok "memcached on 127.0.0.1:$memcached_port"; exit 1; }
/usr/sbin/nginx -p "$prefix/" -c conf/nginx.conf &
nginx_pid=$!
wait_port "$http_port" || { not_ok "nginx on 127.0.0.1:$http_port"; exit 1; }

url=http://127.0.0.1:$http_port/
curl -sS -D "$tmp/h1" -o /dev/null -c "$tmp/jar" -b "$tmp/jar" "$url"
curl -sS -D "$tmp/h2" -o /dev/null -c "$tmp/jar" -b "$tmp/jar" "$url"
check "first request: 200" grep -q '^HTTP/1.1 200' "$tmp/h1"
check "first request: a session cookie" grep -qi '^Set-Cookie: ' "$tmp/h1"
check "first request: status new" grep -qix 'X-Session-Status: new.' "$tmp/h1"
check "second request: status valid" grep -qix 'X-Session-Status: valid.' "$tmp/h2"
items=$(exec 3<>"/dev/tcp/127.0.0.1/$memcached_port"
    printf 'stats\r\nquit\r\n' >&3
    sed -n 's/^STAT curr_items \([0-9]*\).*/\1/p' <&3)
check "the session is in memcached ($items items)" test "${items:-0}" -gt 0

kill -QUIT "$nginx_pid"
wait "$nginx_pid" || true
nginx_pid=
kill "$memcached_pid"
wait "$memcached_pid" 2>/dev/null || true
memcached_pid=

echo "# apt-get remove $pkg"
"${apt[@]}" remove "$pkg" >"$tmp/apt.log" 2>&1 \
    || { cat "$tmp/apt.log"; not_ok "apt-get remove"; exit 1; }
check "module removed" test ! -e "$so"
check "snippet removed" test ! -e "$snippet"
check "link disabled as $link.removed" \
    bash -c "[ ! -L '$link' ] && [ -L '$link.removed' ]"
check "nginx -t with the stock configuration" nginx -t -q

echo "# apt-get purge $pkg"
"${apt[@]}" purge "$pkg" >"$tmp/apt.log" 2>&1 \
    || { cat "$tmp/apt.log"; not_ok "apt-get purge"; exit 1; }
check "purged" test "$(state)" = not-installed
check "no link left" bash -c "[ ! -L '$link' ] && [ ! -L '$link.removed' ]"
check "no /usr/share/doc/$pkg left" test ! -e "/usr/share/doc/$pkg"
listing >"$tmp/after"
check "module directories as they were" diff -u "$tmp/before" "$tmp/after"

if [ "$failures" -ne 0 ]; then
    echo "test-deb: $failures check(s) failed" >&2
    exit 1
fi
echo "test-deb: all checks passed"
