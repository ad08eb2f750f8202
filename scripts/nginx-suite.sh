#!/usr/bin/env bash
# make test-nginx-suite: nginx's own test suite (an nginx-tests checkout)
# with and without this module, and our t/*.t under that suite's
# lib/Test/Nginx.pm.
#
#   1. base     the whole suite against the bundled nginx, no module;
#   2. loaded   the module loaded (TEST_NGINX_GLOBALS) and a memcached store
#               configured (TEST_NGINX_GLOBALS_HTTP), nothing switched on:
#               every file must give the same result as in 1;
#   3. harden   as 2 plus `paranoid_harden_cookies on`: only the files that
#               assert on Set-Cookie attributes may differ (the allowlist
#               below, each with the attribute the module adds);
#   4. our t/*.t with PERL5LIB=<suite>/lib, against the bundled nginx and
#      Debian's.
#
# The files whose result differs from pass 1 are run again, without the rest
# of the suite, twice under each of the two configurations, before they count
# as differences; results that vary between runs are reported as flaky.
#
# Results, one directory per pass: build/nginx-suite/<pass>/<file>.tap (the
# TAP stream), .err (stderr), .rc (exit status) and .leftover (processes a
# test left running, killed after the pass); retries under <pass>/retry<N>/.
# scripts/suite-compare.pl compares them. Every pass uses copies of nginx and
# the module taken at the start (build/nginx-suite/bin/), so all passes test
# one build even when the tree is rebuilt meanwhile (a .so rewritten in place
# under a running nginx crashes its workers).
#
# Environment: NGINX_TESTS (the nginx-tests checkout, default
# ../shared/nginx-tests relative to the repository), SUITE_JOBS (prove -j,
# default 8: the suite mostly waits, so on 2 CPUs -j8 takes ~160 s a pass
# where -j4 takes ~230 s), SUITE_RETRIES (default 2), SUITE_PASSES (default
# "base loaded harden ours"; a subset reruns only those).
set -euo pipefail

# prove --exec hook: runs one test file, saving its TAP, stderr and exit
# status, then hands the TAP to prove. Files, not a pipe: an nginx process a
# test leaves behind keeps its stdout open, and a pipe would never end.
if [ "${1:-}" = "--run-one" ]; then
    name=$(basename "$2")
    set +e
    perl "$2" >"$SUITE_OUT/$name.tap" 2>"$SUITE_OUT/$name.err"
    rc=$?
    echo "$rc" >"$SUITE_OUT/$name.rc"
    cat "$SUITE_OUT/$name.tap"
    exit "$rc"
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

suite=${NGINX_TESTS:-../shared/nginx-tests}
case $suite in /*) ;; *) suite=$repo/$suite ;; esac
if [ ! -f "$suite/lib/Test/Nginx.pm" ]; then
    echo "test-nginx-suite: SKIPPED: no nginx-tests checkout at $suite" \
        "(set NGINX_TESTS=/path/to/nginx-tests)"
    exit 0
fi
suite=$(cd "$suite" && pwd)

jobs=${SUITE_JOBS:-8}
retries=${SUITE_RETRIES:-2}
passes=${SUITE_PASSES:-base loaded harden ours}
out=$repo/build/nginx-suite
module=ngx_http_paranoid_session_module
self=$repo/scripts/nginx-suite.sh
compare=$repo/scripts/suite-compare.pl
debian_nginx=${DEBIAN_NGINX:-/usr/sbin/nginx}
debian_modules=${DEBIAN_MODULES:-/usr/lib/nginx/modules}

# The files that compare whole Set-Cookie values from a proxied upstream, and
# the attributes `paranoid_harden_cookies on` adds to them over plain HTTP
# (Secure only over HTTPS: none of them). Found by running the suite; the
# comparison checks every newly failed assertion is explained by these.
harden_allow=(
    h2_headers.t=HttpOnly h2_headers.t=SameSite=Lax
    proxy_cookie.t=HttpOnly proxy_cookie.t=SameSite=Lax
    proxy_cookie_flags.t=HttpOnly proxy_cookie_flags.t=SameSite=Lax
)

make --no-print-directory build build-debian

# Private copies (new files, so a running nginx never sees them change).
bin=$out/bin
mkdir -p "$bin"
snapshot() {
    cp "$1" "$bin/.$2.tmp"
    mv -f "$bin/.$2.tmp" "$bin/$2"
}
snapshot "$(readlink -f build/vendored/nginx)" nginx
snapshot "build/vendored/$module.so" "$module.so"
snapshot "build/debian/$module.so" "debian-$module.so"

root_globals=""
[ "$(id -u)" -eq 0 ] && root_globals="user root;"
module_globals="$root_globals load_module $bin/$module.so;"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One memcached on a free loopback port for the store of passes 2 and 3
# (the kernel picks the port: outside nginx-tests' 8000-8999 range).
mc_port=$(perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport')
mc_user=()
[ "$(id -u)" -eq 0 ] && mc_user=(-u root)
memcached -l 127.0.0.1 -p "$mc_port" -U 0 "${mc_user[@]}" &
pids+=($!)
store_http="paranoid_session_store 127.0.0.1:$mc_port;"

# The environment of each pass.
pass_env() {
    case $1 in
    base)   echo "TEST_NGINX_GLOBALS=$root_globals" ;;
    loaded) echo "TEST_NGINX_GLOBALS=$module_globals"
            echo "TEST_NGINX_GLOBALS_HTTP=$store_http" ;;
    harden) echo "TEST_NGINX_GLOBALS=$module_globals"
            echo "TEST_NGINX_GLOBALS_HTTP=$store_http paranoid_harden_cookies on;" ;;
    esac
}

# The module loads and its store directive parses before a pass relies on it.
check_dir=$(mktemp -d)
printf 'pid %s/nginx.pid;\n%s\nevents {}\nhttp { %s }\n' \
    "$check_dir" "$module_globals" "$store_http" >"$check_dir/nginx.conf"
"$bin/nginx" -t -q -p "$check_dir" -c nginx.conf -e "$check_dir/error.log"
rm -rf "$check_dir"

# Processes still holding a result file of DIR open once prove is done were
# left running by that test: note them in <file>.leftover and kill them.
reap_leftovers() {
    local dir=$1 p link name
    for p in /proc/[0-9]*; do
        link=$(readlink "$p/fd/1" 2>/dev/null) || continue
        case $link in "$dir"/*.t.tap) ;; *) continue ;; esac
        name=$(basename "$link" .tap)
        echo "pid ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" \
            >>"$dir/$name.leftover"
        echo "test-nginx-suite: $name left pid ${p#/proc/} running; killed"
        kill -KILL "${p#/proc/}" 2>/dev/null || true
    done
}

# run_suite PASS DIR JOBS FILE...: prove over FILEs (relative to the suite)
# with PASS's environment, results in DIR.
run_suite() {
    local pass=$1 dir=$2 j=$3
    shift 3
    mkdir -p "$dir"
    local envs=()
    mapfile -t envs < <(pass_env "$pass")
    (
        cd "$suite"
        exec env -u TEST_NGINX_GLOBALS -u TEST_NGINX_GLOBALS_HTTP \
            -u TEST_NGINX_GLOBALS_STREAM -u TEST_NGINX_MODULES -u PERL5LIB \
            TEST_NGINX_BINARY="$bin/nginx" SUITE_OUT="$dir" "${envs[@]}" \
            prove -j"$j" --timer --exec "$self --run-one" "$@"
    ) >>"$dir/prove.out" 2>&1 &
    pids+=($!)
    wait $! || true
    reap_leftovers "$dir"
}

now() { date +%s; }
declare -A took
status=0

official=()
for p in $passes; do
    case $p in base|loaded|harden) official+=("$p") ;; esac
done

mapfile -t files < <(cd "$suite" && ls ./*.t | sed 's|^\./||')
for p in "${official[@]}"; do
    echo "test-nginx-suite: pass '$p': $(pass_env "$p" | tr '\n' ' ')"
    rm -rf "${out:?}/$p"
    start=$(now)
    run_suite "$p" "$out/$p" "$jobs" "${files[@]}"
    took[$p]=$(( $(now) - start ))
    echo "test-nginx-suite: pass '$p': ${took[$p]}s;" \
        "$(grep -E '^(Files=|Result:)' "$out/$p/prove.out" | tr '\n' ' ')"
done

# Run again what differs from the base pass: the files alone (prove -j over
# just them), under both configurations, SUITE_RETRIES times.
declare -A retry_files
for p in loaded harden; do
    [ -d "$out/base" ] && [ -d "$out/$p" ] || continue
    mapfile -t diff_files < <(perl "$compare" --differing "$out/base" "$out/$p")
    [ ${#diff_files[@]} -eq 0 ] && continue
    retry_files[$p]="${diff_files[*]}"
    retry_files[base]="${retry_files[base]:-} ${diff_files[*]}"
done
if [ ${#retry_files[@]} -gt 0 ]; then
    start=$(now)
    for q in base loaded harden; do
        [ -n "${retry_files[$q]:-}" ] || continue
        read -r -a list <<<"$(tr ' ' '\n' <<<"${retry_files[$q]}" | sort -u | tr '\n' ' ')"
        echo "test-nginx-suite: running again under '$q', $retries times: ${list[*]}"
        rm -rf "${out:?}/$q"/retry*
        for ((i = 1; i <= retries; i++)); do
            run_suite "$q" "$out/$q/retry$i" "$jobs" "${list[@]}"
        done
    done
    took[retries]=$(( $(now) - start ))
fi

compare_args=()
for a in "${harden_allow[@]}"; do compare_args+=(--allow "$a"); done
if [ -d "$out/base" ] && [ -d "$out/loaded" ]; then
    echo
    echo "== pass 'loaded' against pass 'base': every file must match"
    perl "$compare" "$out/base" "$out/loaded" | tee "$out/compare-loaded.txt" ||
        status=1
fi
if [ -d "$out/base" ] && [ -d "$out/harden" ]; then
    echo
    echo "== pass 'harden' against pass 'base': only Set-Cookie attribute files may differ"
    perl "$compare" "${compare_args[@]}" "$out/base" "$out/harden" |
        tee "$out/compare-harden.txt" || status=1
fi

# Our own tests under the suite's Test::Nginx, against both nginx builds
# (the environment make prove and make prove-debian give them).
run_ours() {
    local name=$1
    shift
    echo
    echo "== our t/*.t under $suite/lib: $name"
    start=$(now)
    env PERL5LIB="$suite/lib" "$@" prove -j"${PROVE_JOBS:-2}" -r t/ 2>&1 |
        tee "$out/ours-$name.out" || status=1
    took[ours-$name]=$(( $(now) - start ))
}
case " $passes " in *" ours "*)
    # The suite's library, not t/lib's, is the one the tests load.
    used=$(cd t && PERL5LIB=$suite/lib perl -e \
        'BEGIN { push @INC, "lib" } use Test::Nginx; print $INC{"Test/Nginx.pm"}')
    case $used in "$suite"/*) ;; *)
        echo "test-nginx-suite: t/ would use $used, not the suite's library" >&2
        status=1 ;;
    esac
    run_ours bundled TEST_NGINX_BINARY="$bin/nginx" \
        TEST_NGINX_GLOBALS="$root_globals load_module $bin/$module.so;"
    run_ours debian TEST_NGINX_BINARY="$debian_nginx" \
        TEST_NGINX_MODULES="$debian_modules" \
        TEST_NGINX_GLOBALS="$root_globals load_module $bin/debian-$module.so;"
    ;;
esac

echo
echo "== durations"
for k in "${!took[@]}"; do printf '%-20s %4ss\n' "$k" "${took[$k]}"; done | sort
[ $status -eq 0 ] && echo "test-nginx-suite: OK" || echo "test-nginx-suite: FAILED"
exit $status
