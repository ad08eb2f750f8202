#!/usr/bin/env bash
# make demo-check: the demo (scripts/demo.sh) on free loopback ports, with
# its own prefix (build/demo-check), driven through its own page by
# headless Chromium (chromedriver's WebDriver API, from
# scripts/demo-check.pl): log in, three thefts, log out, the replay of an
# old nonce, the counters. Screenshots of each step go to build/demo/.
# Everything it started is stopped on exit.
set -euo pipefail

nginx=${1:?usage: demo-check.sh NGINX MODULE}
module=${2:?usage: demo-check.sh NGINX MODULE}
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=$top/build/demo-check
shots=$top/build/demo

# Four distinct free ports: the page, the stand-in application, memcached,
# chromedriver.
read -r port app_port memcached_port driver_port < <(perl -MIO::Socket::INET -e '
    my @s = map { IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
        LocalPort => 0, ReuseAddr => 1) or die "no free port: $!" } 1 .. 4;
    print join(" ", map { $_->sockport } @s), "\n";')

rm -rf "$prefix"
mkdir -p "$prefix" "$shots"
rm -f "$shots"/*.png

demo_pid=""
driver_pid=""
check_pid=""
stop() {
    trap - EXIT INT TERM
    if [ -n "$check_pid" ]; then kill "$check_pid" 2>/dev/null || true; fi
    # chromedriver and the Chromium it started: its own process group
    if [ -n "$driver_pid" ]; then kill -- "-$driver_pid" 2>/dev/null || true; fi
    if [ -n "$demo_pid" ]; then kill "$demo_pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

DEMO_PORT=$port DEMO_APP_PORT=$app_port DEMO_MEMCACHED_PORT=$memcached_port \
DEMO_PREFIX=$prefix "$top/scripts/demo.sh" "$nginx" "$module" \
    > "$prefix/demo.out" 2>&1 &
demo_pid=$!

setsid chromedriver --port="$driver_port" --log-path="$prefix/chromedriver.log" \
    > "$prefix/chromedriver.out" 2>&1 &
driver_pid=$!

# Both up, or the reason they are not.
up() {
    perl -MHTTP::Tiny -e 'exit(HTTP::Tiny->new(timeout => 2)->get($ARGV[0])->{status} == 599)' "$1"
}
ready=""
for _ in $(seq 1 150); do
    if up "http://127.0.0.1:$port/favicon.ico" && up "http://127.0.0.1:$driver_port/status"; then
        ready=1
        break
    fi
    kill -0 "$demo_pid" 2>/dev/null && kill -0 "$driver_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "demo-check: the demo or chromedriver did not start:" >&2
    cat "$prefix/demo.out" "$prefix/chromedriver.out" >&2
    exit 1
fi

# in the background, so that a signal stops everything at once
perl "$top/scripts/demo-check.pl" "http://127.0.0.1:$port" \
    "http://127.0.0.1:$driver_port" "$shots" "$prefix/chrome-profile" &
check_pid=$!
wait "$check_pid"
