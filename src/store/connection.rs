//! The task that owns one memcached connection: it alone touches the
//! nginx connection (`Peer`), woken by its events and by the first command
//! queued after a flush. Each time it runs it reads what arrived and fills
//! the slots in order, then sends what is queued, at the end of the event
//! loop's iteration. It ends, closing the connection and failing what
//! still waits on it, when the connection fails, when an exchange on it
//! timed out, when nginx closes idle connections at shutdown, or when it
//! is idle and its server keeps enough idle connections already.

use core::future::poll_fn;
use core::task::{Context, Poll};
use std::rc::Rc;

use paranoid_core::wire::Reply;

use super::error::ConnError;
use super::peer::Peer;
use super::pipeline::Pipeline;
use super::server::Pool;
use super::slot::Slot;

/// Starts the task that owns `peer`, carrying the commands of `pipeline`
/// (its server's `pool` lists it). The task runs once at once.
pub fn spawn(peer: Peer, pipeline: Rc<Pipeline>, pool: Rc<Pool>) {
    ngx::async_::spawn(run(Connection {
        peer,
        pipeline,
        pool,
        input: Vec::new(),
        done: Vec::new(),
    }))
    .detach();
}

struct Connection {
    peer: Peer,
    pipeline: Rc<Pipeline>,
    pool: Rc<Pool>,
    /// Bytes received and not parsed yet.
    input: Vec<u8>,
    /// Replies read and not delivered yet (kept for its capacity).
    done: Vec<(Rc<Slot>, Reply)>,
}

async fn run(mut conn: Connection) {
    let why = poll_fn(|cx| conn.poll(cx)).await;
    let Connection { peer, pipeline, .. } = conn;
    // Closed first: nothing reaches the connection while the exchanges
    // woken below run.
    drop(peer);
    pipeline.end(why);
}

impl Connection {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ConnError> {
        self.peer.set_owner(cx.waker());
        self.pipeline.set_busy(Some(cx.waker()));
        let step = self.step();
        self.pipeline.set_busy(None);
        step
    }

    fn step(&mut self) -> Poll<ConnError> {
        if self.peer.closing() {
            return Poll::Ready(ConnError::Closed);
        }
        if let Some(why) = self.pipeline.take_stop() {
            return Poll::Ready(why);
        }
        match self.peer.connected() {
            Ok(true) => {}
            // The output leaves once connect() finishes.
            Ok(false) => {
                self.pipeline.set_flush_arranged(true);
                return Poll::Pending;
            }
            Err(why) => return Poll::Ready(why),
        }

        let failure = self.read().err();
        if failure.is_some() {
            // Exchanges woken below send their next commands elsewhere.
            self.pipeline.close();
        }
        let delivered = !self.done.is_empty();
        for (slot, reply) in self.done.drain(..) {
            slot.finish(Ok(reply));
        }
        if let Some(why) = failure.or_else(|| self.pipeline.take_stop()) {
            return Poll::Ready(why);
        }

        if let Err(why) = self.flush() {
            return Poll::Ready(why);
        }

        let idle = self.pipeline.in_flight() == 0;
        self.peer.set_idle(idle);
        if idle && delivered && (exiting() || self.pool.idle() > self.pool.keepalive) {
            return Poll::Ready(ConnError::Closed);
        }
        Poll::Pending
    }

    /// Reads everything that arrived and takes the complete replies off
    /// the queue, into `done`.
    fn read(&mut self) -> Result<(), ConnError> {
        while self.peer.recv(&mut self.input)? {
            self.pipeline
                .take_replies(&mut self.input, &mut self.done)?;
        }
        Ok(())
    }

    /// Sends what is queued: the first time it is seen, after every other
    /// handler of this iteration of the event loop (a posted event); then
    /// as long as the socket takes it.
    fn flush(&mut self) -> Result<(), ConnError> {
        if !self.pipeline.unsent() {
            self.pipeline.set_flush_arranged(false);
            return Ok(());
        }
        if !self.pipeline.flush_arranged() {
            self.peer.post_flush();
            self.pipeline.set_flush_arranged(true);
            return Ok(());
        }
        if self.peer.flush_posted() || !self.peer.writable() {
            return Ok(());
        }
        let peer = &mut self.peer;
        if self.pipeline.write_with(|out| peer.send(out))? {
            self.pipeline.set_flush_arranged(false);
        }
        Ok(())
    }
}

/// The worker is shutting down gracefully.
fn exiting() -> bool {
    // SAFETY: a plain read of nginx's flag, on the worker's thread.
    unsafe { nginx_sys::ngx_exiting != 0 }
}
