# What bench/run.sh and bench/store-memory.sh share, sourced by both: a
# temporary prefix cleaned up on exit, free loopback ports, the page and key
# every configuration serves with, and starting and stopping memcached and
# nginx there. Expects $here (bench/), $nginx, and a py() function (the
# caller's Python client) with a `stats`-like subcommand given as the
# memcached probe.

# bench_init TAG KEEP: $tmp with conf/, html/ (a 100-byte index.html),
# logs/ and conf/paranoid.key; $user and $root_user to run as root when we
# are; cleanup of every process on exit, the directory too unless KEEP is 1.
bench_init() {
    bench_tag=$1
    bench_keep=$2
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/paranoid-$bench_tag.XXXXXX")
    memcached_pid=""
    nginx_pid=""
    client_pid=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$tmp/conf" "$tmp/html" "$tmp/logs"
    printf '%s\n' '<!DOCTYPE html><html><head><title>bench</title></head><body><p>paranoid session</p></body></html>  ' \
        > "$tmp/html/index.html"
    printf '%s' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$tmp/conf/paranoid.key"
    user=()
    root_user=""
    if [ "$(id -u)" -eq 0 ]; then
        user=(-u root)
        root_user="user root;"
    fi
}

bench_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null
    [ -n "$memcached_pid" ] && kill "$memcached_pid" 2>/dev/null
    wait 2>/dev/null
    if [ "$bench_keep" = 1 ]; then
        echo "$bench_tag: kept $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}

# bench_ports N: N free loopback ports, one a line.
bench_ports() {
    python3 "$here/bench.py" ports "$1"
}

# bench_start_memcached PROBE [OPTION...]: memcached on $memcached_port (one
# thread), ready when `py PROBE $memcached_port` answers.
bench_start_memcached() {
    local probe=$1
    shift
    memcached "${user[@]}" -l 127.0.0.1 -p "$memcached_port" -U 0 -t 1 "$@" &
    memcached_pid=$!
    for _ in $(seq 50); do
        py "$probe" "$memcached_port" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$bench_tag: memcached did not start" >&2
    exit 1
}

bench_stop_memcached() {
    kill "$memcached_pid"
    wait "$memcached_pid" || true
    memcached_pid=""
}

# bench_start_nginx READY-COMMAND...: nginx with $tmp/conf/nginx.conf,
# checked first with -t, ready when the command succeeds.
bench_start_nginx() {
    "$nginx" -p "$tmp/" -c conf/nginx.conf -t -q
    "$nginx" -p "$tmp/" -c conf/nginx.conf &
    nginx_pid=$!
    for _ in $(seq 50); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$bench_tag: nginx did not start:" >&2
    cat "$tmp/logs/error.log" >&2
    exit 1
}

bench_stop_nginx() {
    kill -QUIT "$nginx_pid"
    wait "$nginx_pid" || true
    nginx_pid=""
}
