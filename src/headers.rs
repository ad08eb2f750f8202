//! Walking nginx's header lists (`ngx_list_t` of `ngx_table_elt_t`) to
//! read or change the headers of one name.

use nginx_sys::{ngx_list_part_t, ngx_table_elt_t};

/// Visits the headers named `name` (case-insensitively) that nginx has not
/// deleted (hash 0), in order; stops at the first error of `f`.
///
/// # Safety
/// `part` starts a live header list.
pub unsafe fn each_named<E>(
    mut part: *mut ngx_list_part_t,
    name: &str,
    mut f: impl FnMut(&mut ngx_table_elt_t) -> Result<(), E>,
) -> Result<(), E> {
    while !part.is_null() {
        // SAFETY: a live list part of ngx_table_elt_t (the caller's
        // contract).
        unsafe {
            let elts = (*part).elts.cast::<ngx_table_elt_t>();
            for i in 0..(*part).nelts {
                let h = &mut *elts.add(i);
                if h.hash != 0 && h.key.as_bytes().eq_ignore_ascii_case(name.as_bytes()) {
                    f(h)?;
                }
            }
            part = (*part).next;
        }
    }
    Ok(())
}
