//! The shared memory zone of the counters: one per configuration, named
//! [`ZONE_NAME`], created when the configuration first needs it. nginx
//! keeps a zone of the same name, size and owner over `nginx -s reload`,
//! and hands the previous cycle's data to [`init`]: the counters go on
//! from where they were. A restart starts them at zero.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_conf_t, ngx_int_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_calloc, ngx_slab_pool_t,
    ngx_str_t,
};
use ngx::core::Status;
use ngx::http::HttpModule;
use ngx::ngx_string;

use super::Shards;
use crate::conf::MainConf;
use crate::ParanoidSessionModule;

/// The zone's name, as `nginx -T` and error messages show it. Another
/// zone by this name (e.g. a `limit_req_zone`) is refused by nginx as
/// "already declared for a different use".
pub const ZONE_NAME: ngx_str_t = ngx_string!("paranoid_session_metrics");

/// Sixteen pages: the slab allocator's own pages, and the counters of 32
/// worker slots (16 KB).
const ZONE_SIZE: usize = 16 * 4096;

/// Why the zone could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot add the \"paranoid_session_metrics\" shared memory zone")]
pub struct ZoneError;

/// Adds the configuration's zone unless it has one.
pub fn ensure(cf: &mut ngx_conf_t, main: &mut MainConf) -> Result<(), ZoneError> {
    if main.metrics.is_some() {
        return Ok(());
    }
    let mut name = ZONE_NAME;
    let tag = ptr::from_ref(ParanoidSessionModule::module())
        .cast_mut()
        .cast::<c_void>();
    // SAFETY: cf is the configuration being read; name is copied by nginx
    // into the zone; the tag is the module's static, the same address for
    // every cycle of this loaded module.
    let zone = unsafe { ngx_shared_memory_add(cf, &mut name, ZONE_SIZE, tag) };
    let mut zone = NonNull::new(zone).ok_or(ZoneError)?;
    // SAFETY: nginx just returned this zone of the cycle being configured;
    // nothing else sets its init.
    unsafe { zone.as_mut().init = Some(init) };
    main.metrics = Some(zone);
    Ok(())
}

/// The counters in `zone`, once nginx has initialized it.
///
/// # Safety
/// `zone` is a zone [`ensure`] added, of a cycle that is still alive.
pub unsafe fn shards(zone: NonNull<ngx_shm_zone_t>) -> Option<&'static Shards> {
    // SAFETY: the caller's contract; data is null or set by init.
    let data = unsafe { zone.as_ref().data };
    // SAFETY: init sets data only to marked `Shards` inside the zone's
    // mapping, which lives as long as any cycle using it.
    unsafe { data.cast::<Shards>().as_ref() }
}

/// nginx's zone initializer: reuse the counters of the zone kept over a
/// reload, or allocate zeroed ones in a new zone.
///
/// # Safety
/// Called by nginx with the zone and, on reload, the previous data.
unsafe extern "C" fn init(zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx passes the zone it initializes.
    let zone = unsafe { &mut *zone };
    // SAFETY: old is null or the data this function set in the previous
    // cycle's zone, which nginx kept (same name, size and tag).
    if let Some(previous) = unsafe { old.cast::<Shards>().as_ref() } {
        if previous.is_marked() {
            zone.data = old;
            return Status::NGX_OK.into();
        }
    }
    let pool = zone.shm.addr.cast::<ngx_slab_pool_t>();
    // SAFETY: nginx made the zone's start a slab pool before calling init.
    let data = unsafe { ngx_slab_calloc(pool, size_of::<Shards>()) };
    // SAFETY: zeroed memory of the right size, page-aligned by the slab
    // allocator (it is larger than half a page), so each slot's 64-byte
    // alignment holds; all zeros is a valid `Shards`.
    let Some(shards) = (unsafe { data.cast::<Shards>().as_ref() }) else {
        return Status::NGX_ERROR.into();
    };
    shards.mark();
    zone.data = data;
    Status::NGX_OK.into()
}
