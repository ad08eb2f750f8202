//! Build script: tells the module's code what the nginx it is built against
//! looks like.
//!
//! `nginx-sys` (`links = "nginx"`) runs nginx's configuration through
//! bindgen and exports what it found to the build scripts of the crates that
//! depend on it directly (this crate does) as `DEP_NGINX_*` variables:
//!
//! | variable                   | example                             |
//! |----------------------------|-------------------------------------|
//! | `DEP_NGINX_FEATURES`       | `compat,http,http_ssl,ssl,...`      |
//! | `DEP_NGINX_FEATURES_CHECK` | every feature name nginx-sys knows  |
//! | `DEP_NGINX_OS`             | `linux`                             |
//! | `DEP_NGINX_OS_CHECK`       | every OS name nginx-sys knows       |
//! | `DEP_NGINX_VERSION_NUMBER` | `1028000` (nginx's `nginx_version`) |
//! | `DEP_NGINX_BUILD_DIR`      | nginx's `objs` directory            |
//!
//! From them this script sets, for this crate only:
//!
//! - `ngx_feature = "NAME"` for each configure flag nginx-sys reports
//!   (`NGX_HTTP_SSL` is `http_ssl`, `NGX_COMPAT` is `compat`, ...);
//! - `ngx_os = "NAME"`, the OS nginx was configured for;
//! - `nginxX_Y_Z` (e.g. `nginx1_23_0`) when nginx is at least version X.Y.Z,
//!   for each gate in [`VERSION_GATES`] (the convention of ngx-rust's
//!   examples), named after the first release with the change it gates;
//! - the compile-time variable `PARANOID_NGINX_BUILD_DIR`, nginx's `objs`
//!   directory. The crate does not read it: it is there so that cargo's
//!   `build-script-executed` message (`--message-format=json`) names the
//!   nginx this very build used, which is how the Makefile and
//!   `bench/run.sh` find the bundled nginx binary (see
//!   `scripts/cargo-build.sh`).
//!
//! Every cfg name and value is declared with `rustc-check-cfg`, so a typo in
//! a `#[cfg(...)]` is a warning (an error under `clippy -D warnings`).

use std::env;

/// Version gates: (minimum `nginx_version`, cfg name).
const VERSION_GATES: &[(u64, &str)] = &[
    // 1.23.0: the request's `Cookie` headers are a linked list,
    // `headers_in.cookie` (each `ngx_table_elt_t` has `next`).
    (1_023_000, "nginx1_23_0"),
];

fn main() -> Result<(), String> {
    features()?;
    os()?;
    version()?;
    build_dir()?;
    Ok(())
}

/// A variable nginx-sys exports; rebuild when it changes.
fn dep(name: &str) -> Result<String, String> {
    println!("cargo::rerun-if-env-changed={name}");
    env::var(name)
        .map_err(|e| format!("{name}: {e} (nginx-sys must be a direct dependency of this crate)"))
}

fn features() -> Result<(), String> {
    // Already quoted and comma-separated: "compat","debug",...
    let known = dep("DEP_NGINX_FEATURES_CHECK")?;
    println!("cargo::rustc-check-cfg=cfg(ngx_feature, values({known}))");
    for feature in dep("DEP_NGINX_FEATURES")?
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        println!("cargo::rustc-cfg=ngx_feature=\"{feature}\"");
    }
    Ok(())
}

fn os() -> Result<(), String> {
    let known = dep("DEP_NGINX_OS_CHECK")?;
    println!("cargo::rustc-check-cfg=cfg(ngx_os, values({known}))");
    let os = dep("DEP_NGINX_OS")?;
    if !os.is_empty() {
        println!("cargo::rustc-cfg=ngx_os=\"{os}\"");
    }
    Ok(())
}

fn version() -> Result<(), String> {
    for (_, name) in VERSION_GATES {
        println!("cargo::rustc-check-cfg=cfg({name})");
    }
    let text = dep("DEP_NGINX_VERSION_NUMBER")?;
    let number: u64 = text
        .trim()
        .parse()
        .map_err(|e| format!("DEP_NGINX_VERSION_NUMBER={text:?}: {e}"))?;
    for (min, name) in VERSION_GATES {
        if number >= *min {
            println!("cargo::rustc-cfg={name}");
        }
    }
    Ok(())
}

fn build_dir() -> Result<(), String> {
    let dir = dep("DEP_NGINX_BUILD_DIR")?;
    println!("cargo::rustc-env=PARANOID_NGINX_BUILD_DIR={dir}");
    Ok(())
}
