//! Where one exchange's reply lands: the exchange waits on its slot, the
//! task that owns the connection fills it.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::{Poll, Waker};
use std::rc::Rc;

use paranoid_core::wire::{Expect, Reply};

use super::error::ConnError;

pub struct Slot {
    /// What the reply must answer.
    pub expect: Expect,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    result: Option<Result<Reply, ConnError>>,
    waker: Option<Waker>,
}

impl Slot {
    pub fn new(expect: Expect) -> Rc<Slot> {
        Rc::new(Slot {
            expect,
            state: RefCell::new(State::default()),
        })
    }

    /// Waits for the reply, or the failure of its connection.
    pub async fn wait(&self) -> Result<Reply, ConnError> {
        poll_fn(|cx| {
            let mut state = self.state.borrow_mut();
            match state.result.take() {
                Some(result) => Poll::Ready(result),
                None => {
                    if !state
                        .waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        state.waker = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Stores the result and wakes the exchange, which may run at once:
    /// call it with nothing of the store borrowed.
    pub fn finish(&self, result: Result<Reply, ConnError>) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.result = Some(result);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
