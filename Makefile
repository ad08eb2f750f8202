# ngx_http_paranoid_session_module
#
#   make demo   install what is missing, build, serve the demo on 127.0.0.1:8080
#   make test   install what is missing, build, run every test against the
#               bundled nginx (1.28) and Debian's nginx (1.22)
#
#   make deb    build/libnginx-mod-http-paranoid-session_<version>_<arch>.deb
#               for Debian's nginx: apt install ./build/libnginx-mod-...deb
#
# Other targets: build, build-debian, unit, prove, prove-debian, demo-check,
# test-addon, test-nossl, test-nginx-suite, test-asan, test-deb, lint, bench,
# clean.

MODULE      := ngx_http_paranoid_session_module
CARGO       ?= cargo
PROFILE     ?= debug
PROVE_JOBS  ?= 2
TESTS       ?= t/

OUT         := $(CURDIR)/build
VENDORED    := $(OUT)/vendored
DEBIAN      := $(OUT)/debian
DEBIAN_TREE := $(CURDIR)/target/debian-nginx
DEBIAN_NGINX ?= /usr/sbin/nginx
DEBIAN_MODULES ?= /usr/lib/nginx/modules

CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)

# Workers run as root when the tests do (they must read the test directory).
ROOT_GLOBALS := $(if $(filter 0,$(shell id -u)),user root;,)

.PHONY: help deps build build-debian unit prove prove-debian test test-addon \
	test-nossl test-nginx-suite lint demo demo-check bench clean deb test-deb

help:
	@sed -n '3,13p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@scripts/deps.sh

# The module for the bundled nginx, and that nginx binary. Copies are
# renamed into place: overwriting a .so that a running nginx has mapped
# crashes its workers. The nginx binary is the one in the objs directory
# that this very cargo build's nginx-sys used, as build.rs reports it (see
# scripts/cargo-build.sh).
build: deps
	@mkdir -p $(VENDORED)
	objs=$$(CARGO="$(CARGO)" scripts/cargo-build.sh $(CARGO_PROFILE_FLAG)) && \
	  if [ ! -x "$$objs/nginx" ]; then echo "no nginx binary in $$objs" >&2; exit 1; fi && \
	  ln -sf "$$objs/nginx" $(VENDORED)/nginx
	cp target/$(PROFILE)/lib$(MODULE).so $(VENDORED)/.$(MODULE).so.tmp
	mv -f $(VENDORED)/.$(MODULE).so.tmp $(VENDORED)/$(MODULE).so
	@echo "built $(VENDORED)/$(MODULE).so for $$($(VENDORED)/nginx -v 2>&1)"

# The module for Debian's nginx, built against a configured copy of the
# nginx-dev source tree.
build-debian: deps
	scripts/debian-nginx-tree.sh $(DEBIAN_TREE)
	NGINX_SOURCE_DIR=$(DEBIAN_TREE) NGINX_BUILD_DIR=$(DEBIAN_TREE)/objs \
	  $(CARGO) build $(CARGO_PROFILE_FLAG) --no-default-features \
	  --features export-modules --target-dir target/debian
	@mkdir -p $(DEBIAN)
	cp target/debian/$(PROFILE)/lib$(MODULE).so $(DEBIAN)/.$(MODULE).so.tmp
	mv -f $(DEBIAN)/.$(MODULE).so.tmp $(DEBIAN)/$(MODULE).so
	@echo "built $(DEBIAN)/$(MODULE).so for $$($(DEBIAN_NGINX) -v 2>&1)"

unit: deps
	$(CARGO) test -p paranoid-core
	scripts/check-docs.sh

prove: build
	TEST_NGINX_BINARY=$(VENDORED)/nginx \
	TEST_NGINX_GLOBALS="$(ROOT_GLOBALS) load_module $(VENDORED)/$(MODULE).so;" \
	  prove -j$(PROVE_JOBS) -r $(TESTS)

prove-debian: build-debian
	TEST_NGINX_BINARY=$(DEBIAN_NGINX) \
	TEST_NGINX_MODULES=$(DEBIAN_MODULES) \
	TEST_NGINX_GLOBALS="$(ROOT_GLOBALS) load_module $(DEBIAN)/$(MODULE).so;" \
	  prove -j$(PROVE_JOBS) -r $(TESTS)

test: unit prove prove-debian demo-check

# nginx's own build system: ./configure --add-dynamic-module=. (slow: a
# full nginx build and a release build of the module).
test-addon: build
	scripts/addon-build.sh

# The module built by cargo against the bundled nginx source configured
# without SSL and without --with-compat (so ngx_connection_t has no `ssl`),
# that nginx built, and nginx -t loading the module: the ngx_feature gates
# of build.rs keep it buildable (under 2 minutes from a fresh clone).
test-nossl: deps
	$(CARGO) fetch
	CARGO="$(CARGO)" scripts/nossl-build.sh

# nginx's own test suite (an nginx-tests checkout) against the bundled nginx
# without the module, with it loaded, and with paranoid_harden_cookies on,
# compared file by file; then t/*.t under its Test::Nginx on both nginx
# builds. Skipped when NGINX_TESTS (relative to this directory) is absent.
NGINX_TESTS ?= ../shared/nginx-tests

test-nginx-suite:
	NGINX_TESTS="$(NGINX_TESTS)" scripts/nginx-suite.sh

# The bundled nginx (clang) and the module (rustc -Zsanitizer=address) built
# with AddressSanitizer into target/asan and build/asan, then t/ on that
# build; fails on any sanitizer report (build/asan/reports). See
# scripts/asan.sh.
.PHONY: test-asan
test-asan:
	@scripts/deps.sh clang libclang-rt-14-dev llvm
	PROVE_JOBS=$(PROVE_JOBS) TESTS="$(TESTS)" scripts/asan.sh

# The Debian package of the module for Debian's nginx, built by
# dpkg-buildpackage from a clean copy of the tree (debian/, see
# scripts/deb-build.sh). `cargo fetch` is the only step that may need the
# network; the package build itself runs cargo --frozen.
DEB_PACKAGES := build-essential dpkg-dev debhelper

deb:
	@scripts/deps.sh $(DEB_PACKAGES)
	$(CARGO) fetch
	CARGO="$(CARGO)" scripts/deb-build.sh

# The package installed into this machine's nginx with apt, checked with
# lintian, nginx -t on the stock configuration and a separate nginx serving
# a session through the installed module, then purged (scripts/test-deb.sh).
test-deb: deb
	@scripts/deps.sh $(DEB_PACKAGES) lintian curl
	scripts/test-deb.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

demo: build
	scripts/demo.sh $(VENDORED)/nginx $(VENDORED)/$(MODULE).so

# The demo on free loopback ports (never 8080 or 11212), driven through its
# own page by headless Chromium and chromedriver: a login, a theft under
# each policy, a logout, an old nonce replayed; it checks what the page
# shows and leaves a screenshot of each step in build/demo/ (about 35 s).
demo-check: build
	@scripts/deps.sh chromium chromium-driver
	scripts/demo-check.sh $(VENDORED)/nginx $(VENDORED)/$(MODULE).so

# Release build, then bench/run.sh: its own memcached and nginx on free
# loopback ports, driven by wrk; prints one table. Knobs: BENCH_DURATION,
# BENCH_RUNS, BENCH_CONNECTIONS (see bench/run.sh).
bench:
	@scripts/deps.sh wrk python3
	$(CARGO) build --release
	bench/run.sh

clean:
	rm -rf $(OUT)
	$(CARGO) clean
