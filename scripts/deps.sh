#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, when
# they are missing. Safe to run again: it installs nothing that is present.
set -euo pipefail

packages=(
    # bindgen and the nginx build (bundled and Debian's)
    libclang-dev libpcre2-dev zlib1g-dev libssl-dev make gcc
    # Debian's nginx 1.22 and the headers modules are built against
    nginx nginx-dev
    # the dynamic modules Debian's nginx -V lists: nginx-tests' Test::Nginx
    # loads them from TEST_NGINX_MODULES when it drives that binary
    libnginx-mod-http-geoip libnginx-mod-http-image-filter
    libnginx-mod-http-perl libnginx-mod-http-xslt-filter libnginx-mod-mail
    libnginx-mod-stream libnginx-mod-stream-geoip
    # the session store, and what the tests use
    memcached openssl perl libio-socket-ssl-perl
    # promtool and a Prometheus server, which t/paranoid_metrics_prometheus.t
    # runs against the metrics exposition. The package also starts a system
    # Prometheus on :9090; the test never uses it (it starts its own on a
    # free loopback port), so it is left alone here
    prometheus
)
# Extra packages a caller needs (e.g. "wrk" for the benchmark).
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: run as root or install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
