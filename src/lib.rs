//! ngx_http_paranoid_session_module: session security enforced by nginx.
//!
//! The crate is split into a pure core (value parsing, and later the session
//! decision, record codec and cookies) and thin nginx edges (module
//! registration here, directive handlers in `conf`, variables). FFI and
//! `unsafe` live only in the edges.

use core::ptr;

use nginx_sys::{
    ngx_array_push, ngx_conf_t, ngx_http_handler_pt, ngx_http_module_t,
    ngx_http_phases_NGX_HTTP_ACCESS_PHASE, ngx_int_t, ngx_module_t, ngx_uint_t,
};
use ngx::core::Status;
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};

mod access;
pub mod conf;
mod control;
mod filter;
mod grace;
mod headers;
mod hold;
mod https;
mod metrics;
mod request_state;
mod session;
mod store;
mod variables;

use conf::{LocConf, MainConf};

/// Marker type carrying the module's nginx hooks.
pub struct ParanoidSessionModule;

static NGX_HTTP_PARANOID_SESSION_MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(ParanoidSessionModule::preconfiguration),
    postconfiguration: Some(ParanoidSessionModule::postconfiguration),
    create_main_conf: Some(ParanoidSessionModule::create_main_conf),
    init_main_conf: None,
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(ParanoidSessionModule::create_loc_conf),
    merge_loc_conf: Some(conf::merge_loc_conf),
};

// Generate the `ngx_modules` table: a cdylib built by cargo, outside nginx's
// build system, needs it to be loadable with `load_module`.
#[cfg(feature = "export-modules")]
ngx::ngx_modules!(ngx_http_paranoid_session_module);

#[used]
#[allow(non_upper_case_globals)]
#[cfg_attr(not(feature = "export-modules"), no_mangle)]
pub static mut ngx_http_paranoid_session_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(NGX_HTTP_PARANOID_SESSION_MODULE_CTX)
        .cast_mut()
        .cast(),
    // SAFETY: the commands table is a static that lives as long as the module;
    // nginx only reads it.
    commands: unsafe { ptr::addr_of_mut!(conf::commands::COMMANDS[0]) },
    type_: nginx_sys::NGX_HTTP_MODULE as ngx_uint_t,
    ..ngx_module_t::default()
};

// SAFETY: MainConf is the type allocated by create_main_conf for this module.
unsafe impl HttpModuleMainConf for ParanoidSessionModule {
    type MainConf = MainConf;
}

// SAFETY: LocConf is the type allocated by create_loc_conf for this module.
unsafe impl HttpModuleLocationConf for ParanoidSessionModule {
    type LocationConf = LocConf;
}

impl HttpModule for ParanoidSessionModule {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the module static is only written by nginx while it loads the
        // configuration (ctx_index, index), never concurrently with this read.
        unsafe { &*ptr::addr_of!(ngx_http_paranoid_session_module) }
    }

    unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // SAFETY: nginx passes a valid configuration context.
        match unsafe { variables::register(cf) } {
            Ok(()) => Status::NGX_OK.into(),
            Err(()) => Status::NGX_ERROR.into(),
        }
    }

    unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // SAFETY: nginx passes a valid configuration context; the core
        // module's main conf holds the phase handler arrays.
        unsafe {
            let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(&*cf) else {
                return Status::NGX_ERROR.into();
            };
            let phase = &mut cmcf.phases[ngx_http_phases_NGX_HTTP_ACCESS_PHASE as usize];
            let h = ngx_array_push(&mut phase.handlers).cast::<ngx_http_handler_pt>();
            if h.is_null() {
                return Status::NGX_ERROR.into();
            }
            *h = Some(access::handler);
            filter::install();
        }
        Status::NGX_OK.into()
    }
}
