//! Cancelling a caller's store reads from another thread.
//!
//! The store is synchronous and its callers run it on a blocking pool, so a
//! caller that gives up (an HTTP client that disconnected) cannot stop the
//! query by dropping anything. Instead the caller runs the store call inside
//! [`Cancel::scope`]; each read transaction started in that scope registers
//! how to interrupt itself, and [`Cancel::cancel`] — typically from the
//! [`CancelOnDrop`] guard of the abandoned request — interrupts it: SQLite's
//! progress handler sees the flag, PostgreSQL gets a cancel request. A read
//! started after the cancel fails at once. Writes are never cancelled: they
//! are short, and a caller must not lose a commit it asked for.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Interrupt = Box<dyn FnOnce() + Send>;

/// A cancellation handle shared by a caller and the thread running its store calls.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Inner>);

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    /// How to interrupt the read transaction running now, if any.
    running: Mutex<Option<Interrupt>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Cancel>> = const { RefCell::new(None) };
}

impl Cancel {
    /// A handle that has not been cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with this handle as the current thread's: the store reads
    /// `f` makes can be cancelled through it.
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let previous = CURRENT.with(|c| c.replace(Some(self.clone())));
        // Restored even if `f` unwinds, so a pooled thread never keeps it.
        struct Restore(Option<Cancel>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let _restore = Restore(previous);
        f()
    }

    /// Cancels: the read running in this handle's scope is interrupted, and
    /// every later one fails at once. Safe to call from any thread, including
    /// an async runtime's (an interrupt never blocks).
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let running = self.0.running.lock().expect("cancel poisoned").take();
        if let Some(interrupt) = running {
            interrupt();
        }
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// A guard that cancels this handle when dropped, unless disarmed first.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }

    /// The handle of the [`Cancel::scope`] this thread runs in, if any: work
    /// other than reads can poll it to stop early.
    pub fn current() -> Option<Cancel> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Registers how to interrupt the read about to run. `None` when the
    /// handle is already cancelled: the read must not start.
    pub(crate) fn arm(&self, interrupt: Interrupt) -> Option<Armed> {
        let mut running = self.0.running.lock().expect("cancel poisoned");
        // Checked under the lock: `cancel` sets the flag before taking it,
        // so either it sees this interrupt or this sees its flag.
        if self.is_cancelled() {
            return None;
        }
        *running = Some(interrupt);
        Some(Armed(self.clone()))
    }
}

/// A registered interrupt; [`Armed::disarm`] when the read is over.
pub(crate) struct Armed(Cancel);

impl Armed {
    /// Unregisters the interrupt; true when it already fired (the caller
    /// then must not reuse the connection the interrupt may still reach).
    pub(crate) fn disarm(self) -> bool {
        let mut running = self.0.0.running.lock().expect("cancel poisoned");
        running.take().is_none()
    }
}

/// Cancels its handle when dropped: held by a request's future, so a request
/// abandoned mid-query stops its query.
pub struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    /// The work finished: dropping the guard no longer cancels.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_cancel_interrupts_the_armed_read_once_and_refuses_later_ones() {
        let cancel = Cancel::new();
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let armed = cancel
            .arm(Box::new(move || {
                f.fetch_add(1, Ordering::SeqCst);
            }))
            .expect("not cancelled yet");
        cancel.cancel();
        cancel.cancel();
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert!(armed.disarm(), "the interrupt fired");
        assert!(cancel.arm(Box::new(|| {})).is_none());
    }

    #[test]
    fn a_disarmed_read_is_not_interrupted_and_the_scope_is_restored() {
        let cancel = Cancel::new();
        let armed = cancel.arm(Box::new(|| panic!("must not fire"))).unwrap();
        assert!(!armed.disarm());
        cancel.cancel();
        assert!(Cancel::current().is_none());
        let inner = cancel.scope(|| Cancel::current().map(|c| c.is_cancelled()));
        assert_eq!(inner, Some(true));
        assert!(Cancel::current().is_none());
    }

    #[test]
    fn the_guard_cancels_when_dropped_unless_disarmed() {
        let a = Cancel::new();
        drop(a.on_drop());
        assert!(a.is_cancelled());
        let b = Cancel::new();
        b.on_drop().disarm();
        assert!(!b.is_cancelled());
    }
}
