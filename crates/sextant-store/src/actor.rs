//! Who the events of a store call are recorded as done by.
//!
//! With authentication on, the server knows who is calling, and that, not
//! a name the request declares (a run's `user_id`, an approval's `actor`),
//! is who an event should name. Threading the caller through every store
//! method would touch them all; instead the server runs each request's
//! future inside [`acting_as`], [`crate::call`] carries the name onto the
//! blocking thread that runs the store call, and `events::append` records
//! it in place of the actor its caller passed. Work not done for a request
//! (the orchestrator, schedules, triggers) runs outside any such scope and
//! records what it passes, as before; so does everything with
//! authentication off.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static TASK_ACTOR: Arc<str>;
}

thread_local! {
    static THREAD_ACTOR: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Runs `work` as `actor`: every event the store calls it makes through
/// [`crate::call`] append names `actor`.
pub async fn acting_as<F: Future>(actor: Arc<str>, work: F) -> F::Output {
    TASK_ACTOR.scope(actor, work).await
}

/// The actor of the task calling, if it runs inside [`acting_as`].
pub(crate) fn of_task() -> Option<Arc<str>> {
    TASK_ACTOR.try_with(Arc::clone).ok()
}

/// Runs `f` on this thread as `actor` (nothing changes for `None`): the
/// blocking half of [`acting_as`].
pub(crate) fn scope<T>(actor: Option<Arc<str>>, f: impl FnOnce() -> T) -> T {
    let Some(actor) = actor else {
        return f();
    };
    let previous = THREAD_ACTOR.with(|a| a.replace(Some(actor)));
    // Restored even if `f` unwinds, so a pooled thread never keeps it.
    struct Restore(Option<Arc<str>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            THREAD_ACTOR.with(|a| *a.borrow_mut() = previous);
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The actor this thread's store calls act as, if any.
pub(crate) fn current() -> Option<Arc<str>> {
    THREAD_ACTOR.with(|a| a.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_names_the_actor_and_is_restored() {
        assert_eq!(current(), None);
        scope(Some("alice".into()), || {
            assert_eq!(current().as_deref(), Some("alice"));
            scope(Some("pipeline:p".into()), || {
                assert_eq!(current().as_deref(), Some("pipeline:p"));
            });
            scope(None, || assert_eq!(current().as_deref(), Some("alice")));
            assert_eq!(current().as_deref(), Some("alice"));
        });
        assert_eq!(current(), None);
    }
}
