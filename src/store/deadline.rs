//! The deadline of one exchange: an nginx timer that wakes the waiting task.
//!
//! Unlike `ngx::async_::sleep`, whose timer is cancelable, this timer keeps
//! a worker that is shutting down gracefully (reload, `nginx -s quit`) alive
//! until the exchange ends: nginx exits a worker as soon as only cancelable
//! timers are left, which would drop requests waiting on memcached and
//! leave their connections open.

use core::future::{poll_fn, Future};
use core::mem;
use core::pin::{pin, Pin};
use core::ptr;
use core::task::{Context, Poll, Waker};

use nginx_sys::{ngx_add_timer, ngx_del_timer, ngx_event_t};

/// The timer's event and who to wake. `#[repr(C)]` with a leading block
/// shaped like the start of an `ngx_connection_t`: nginx's debug log reads
/// `ev->data` as a connection to print its fd ("event timer add: -1: ...").
#[repr(C)]
struct Timer {
    ident: [usize; 4],
    event: ngx_event_t,
    fired: bool,
    waker: Option<Waker>,
}

/// Resolves once `ms` milliseconds have passed. Dropping it removes the
/// timer.
pub struct Deadline {
    timer: Box<Timer>,
}

impl Deadline {
    pub fn new(ms: u64) -> Deadline {
        // SAFETY: an all-zero event is nginx's initial state.
        let event: ngx_event_t = unsafe { mem::zeroed() };
        let mut timer = Box::new(Timer {
            // the fd slot: -1, as for a connection that has none
            ident: [0, 0, 0, usize::MAX],
            event,
            fired: false,
            waker: None,
        });
        let data: *mut Timer = ptr::from_mut(&mut *timer);
        timer.event.data = data.cast();
        timer.event.handler = Some(on_timer);
        // SAFETY: the cycle's log lives as long as the worker.
        timer.event.log = unsafe { (*nginx_sys::ngx_cycle).log };
        // SAFETY: the event lives in the box until Drop removes the timer.
        unsafe { ngx_add_timer(&mut timer.event, ms as nginx_sys::ngx_msec_t) };
        Deadline { timer }
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.timer.fired {
            return Poll::Ready(());
        }
        self.timer.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if self.timer.event.timer_set() != 0 {
            // SAFETY: the timer was added by new() and has not fired.
            unsafe { ngx_del_timer(&mut self.timer.event) };
        }
    }
}

unsafe extern "C" fn on_timer(ev: *mut ngx_event_t) {
    // SAFETY: ev->data is the Timer that owns this event (set in new()); the
    // timer tree no longer holds the event, and the box is alive because
    // Drop removes a pending timer before freeing it.
    let waker = unsafe {
        let timer = &mut *(*ev).data.cast::<Timer>();
        timer.fired = true;
        timer.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Polls `fut` until it finishes or `ms` milliseconds pass (`None`).
/// Dropping the unfinished future is up to the caller.
pub async fn within<F: Future>(ms: u64, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut timer = pin!(Deadline::new(ms));
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
