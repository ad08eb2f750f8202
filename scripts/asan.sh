#!/usr/bin/env bash
# make test-asan: the bundled nginx and the module built with
# AddressSanitizer, then the t/ suite run on that build. Fails when any
# process (nginx master, workers, nginx -t/-V) wrote a sanitizer report.
#
#   scripts/asan.sh            build, then test
#   scripts/asan.sh build      only build/asan/nginx and build/asan/<module>.so
#   scripts/asan.sh test       only the t/ run (on an existing build)
#
# How it is built:
#   - nginx, through the nginx-src crate (the `vendored` feature, as in
#     `make build`), configured with clang, -fsanitize=address and
#     NGX_DEBUG_PALLOC (every pool allocation its own malloc, so ASan sees
#     overflows inside pools). The executable links clang's ASan runtime and
#     exports its symbols.
#   - the module with rustc's -Zsanitizer=address. A cdylib does not link
#     the runtime on Linux: its __asan_* references resolve against the nginx
#     executable when nginx loads it, which this script checks after the
#     build. Rust's std stays uninstrumented (-Zbuild-std would need rust-src
#     and crates.io at build time); the module's own code and its
#     dependencies are instrumented.
#   - with the default toolchain (the same stable rustc as the other builds,
#     the only one a CI machine has) and RUSTC_BOOTSTRAP=1 to allow -Z flags.
#     ASAN_CARGO="cargo +nightly" picks another toolchain.
#   - with --target <host>, so RUSTFLAGS reach only the module's crates and
#     not build scripts or proc-macros (an instrumented proc-macro cannot be
#     loaded into an uninstrumented rustc), into target/asan so the other
#     builds are untouched.
#   - the .so linked with -z nodelete: nginx dlclose()s modules when a worker
#     destroys its cycle on exit, which would unmap the module before
#     LeakSanitizer runs: its frames would not symbolize and whatever only
#     its statics reference would look leaked.
#
# How it is run: prove runs each t/*.t through this script (--run-one), which
# sets ASAN_OPTIONS with log_path=build/asan/reports/<file>, so a report
# names the test file that caused it (and the pid of the process); reports
# do not reach error.log, every process's are caught, nginx -V and -t too.
# Leak detection is on, with two exceptions for what nginx itself leaves
# allocated by design: scripts/lsan-suppressions.txt (a worker's event
# arrays), and the reports of processes that exited from main() without
# serving (see early_exit_only below; kept in build/asan/reports/early-exit).
#
# Environment: ASAN_CARGO (default cargo), PROVE_JOBS (default 2), TESTS
# (default t/), ASAN_DETECT_LEAKS (default 1).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
module=ngx_http_paranoid_session_module
out=$repo/build/asan
reports=$out/reports
self=$repo/scripts/asan.sh

# exitcode=0: a leak report must not change an exit status the tests assert
# (nginx -t of a good configuration leaks its cycle by design); reports are
# counted from the files. A memory error still ends the process at once.
asan_options() {
    local opts="log_path=$reports/$1:exitcode=0"
    opts+=":detect_leaks=${ASAN_DETECT_LEAKS:-1}"
    opts+=":detect_stack_use_after_return=1"
    opts+=":strict_string_checks=1"
    echo "$opts"
}

# prove --exec hook: one test file, its reports under its own name.
if [ "${1:-}" = "--run-one" ]; then
    file=$2
    export ASAN_OPTIONS
    ASAN_OPTIONS=$(asan_options "$(basename "$file")")
    export LSAN_OPTIONS="suppressions=$repo/scripts/lsan-suppressions.txt:print_suppressions=0"
    exec perl "$file"
fi

cd "$repo"
what=${1:-all}
host=$(rustc -vV | sed -n 's/^host: //p')
tdir=$repo/target/asan

build() {
    local cargo=${ASAN_CARGO:-cargo}
    local start=$SECONDS
    command -v clang >/dev/null || { echo "asan: clang not found" >&2; exit 1; }

    # nginx-src passes these to nginx's configure (see its README).
    RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes -Clink-arg=-Wl,-z,nodelete" \
    NGX_CONFIGURE_ARGS="--with-cc=clang --with-debug" \
    NGX_CFLAGS="-O1 -g -fsanitize=address -fno-omit-frame-pointer -DNGX_DEBUG_PALLOC=1" \
    NGX_LDFLAGS="-fsanitize=address" \
        $cargo build --lib --target "$host" --target-dir "$tdir"

    local so=$tdir/$host/debug/lib$module.so
    local nginx
    # nginx-sys runs in the target's build directory with --target
    nginx=$(ls -t "$tdir/$host"/debug/build/nginx-sys-*/out/objs/nginx 2>/dev/null | head -n1 || true)
    [ -n "$nginx" ] || { echo "asan: nginx binary not found under $tdir" >&2; exit 1; }

    mkdir -p "$out"
    cp "$so" "$out/.$module.so.tmp"
    mv -f "$out/.$module.so.tmp" "$out/$module.so"
    ln -sf "$nginx" "$out/nginx"

    # Both sides instrumented, and every __asan_* symbol the module needs
    # exported by nginx (rustc's LLVM is newer than clang's runtime).
    local exported needed missing
    exported=$(nm -D --defined-only "$nginx" | awk '{print $3}' | sort -u)
    grep -qx __asan_init <<<"$exported" \
        || { echo "asan: $nginx is not built with ASan" >&2; exit 1; }
    needed=$(nm -D --undefined-only "$out/$module.so" | awk '$2 ~ /^__asan/ {print $2}' | sort -u)
    [ -n "$needed" ] || { echo "asan: $module.so is not instrumented" >&2; exit 1; }
    missing=$(comm -23 <(echo "$needed") <(echo "$exported"))
    [ -z "$missing" ] || { echo "asan: nginx lacks $missing" >&2; exit 1; }

    echo "asan: built in $((SECONDS - start))s: $out/nginx ($("$out/nginx" -v 2>&1)), $out/$module.so"
}

# Exit 0 when a report is only LeakSanitizer's account of a process that
# exited from main() without ever serving: nginx -V, nginx -t, a refused
# configuration. nginx frees nothing on those paths by design (the init
# cycle's pool from main(), and with -t the whole configured cycle), and with
# NGX_DEBUG_PALLOC everything allocated from those pools is listed. The mark
# of such a process: a leaked pool created by ngx_create_pool called from
# main() or from the ngx_init_cycle() main() called. A process that served
# (master, worker) has freed both, so its reports are never set aside. Even
# then every direct leak must be such a pool: anything else leaked outright
# (e.g. by the module's configuration code) is still a report.
early_exit_only() {
    awk '
        function block_end(   i, marked) {
            marked = 0
            for (i = 0; i < n; i++)
                if (f[i] == "ngx_create_pool" && (f[i + 1] == "main" ||
                    (f[i + 1] == "ngx_init_cycle" && f[i + 2] == "main")))
                    marked = 1
            if (marked) early = 1
            if (direct && !marked) bad = 1
            n = 0; direct = 0
        }
        /ERROR: / && !/ERROR: LeakSanitizer: detected memory leaks/ { other = 1 }
        /^(Direct|Indirect) leak of/ { block_end(); direct = /^Direct/; next }
        /^ *#[0-9]+ 0x[0-9a-f]+ in / {
            fn = $0; sub(/^ *#[0-9]+ 0x[0-9a-f]+ in /, "", fn); sub(/ .*/, "", fn)
            f[n++] = fn; next
        }
        { block_end() }
        END { block_end(); exit (other || bad || !early) }
    ' "$1"
}

run_tests() {
    [ -x "$out/nginx" ] && [ -f "$out/$module.so" ] \
        || { echo "asan: no build in $out (scripts/asan.sh build)" >&2; exit 1; }
    local start=$SECONDS
    rm -rf "$reports"
    mkdir -p "$reports"

    # The symbolizer gives file:line in reports; ASan finds it on PATH too.
    if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
        local s
        for s in llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
            if command -v "$s" >/dev/null; then
                export ASAN_SYMBOLIZER_PATH
                ASAN_SYMBOLIZER_PATH=$(command -v "$s")
                break
            fi
        done
    fi

    local root_globals=""
    [ "$(id -u)" -ne 0 ] || root_globals="user root;"
    local rc=0
    TEST_NGINX_BINARY=$out/nginx \
    TEST_NGINX_GLOBALS="$root_globals load_module $out/$module.so;" \
        prove -j"${PROVE_JOBS:-2}" --exec "$self --run-one" -r ${TESTS:-t/} || rc=$?

    local f found=0 early=0
    mkdir -p "$reports/early-exit"
    for f in "$reports"/*; do
        [ -f "$f" ] || continue
        if early_exit_only "$f"; then
            mv "$f" "$reports/early-exit/"
            early=$((early + 1))
            continue
        fi
        echo "==== $f"
        cat "$f"
        found=$((found + 1))
    done
    echo "asan: t/ run took $((SECONDS - start))s; prove exit $rc;" \
        "$found sanitizer report(s); $early early-exit leak report(s)" \
        "not counted (kept in $reports/early-exit)"
    [ "$found" -eq 0 ] || rc=1
    return $rc
}

case $what in
    build) build ;;
    test) run_tests ;;
    all) build; run_tests ;;
    *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac
