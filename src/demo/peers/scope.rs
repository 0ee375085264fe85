//! The task scope of one peer server: every task it spawns (accept loop, connections,
//! hyper's HTTP/2 stream tasks) lives in one `JoinSet`, so closing the scope aborts all.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::task::JoinSet;

/// A shared handle on the tasks of one [`super::PeerServer`].
///
/// The tasks hold clones of the scope (they spawn more tasks), so the scope is a
/// reference cycle by design; [`Scope::close`] breaks it by aborting every task, which
/// drops their futures and with them the clones.
#[derive(Clone, Default)]
pub(super) struct Scope(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    tasks: JoinSet<()>,
    closed: bool,
}

impl Scope {
    /// Spawns `task` in the scope; after [`Scope::close`] the task is dropped unstarted.
    /// Must be called inside a tokio runtime.
    pub(super) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        // Reap finished tasks so a long-running demo does not accumulate their results.
        while inner.tasks.try_join_next().is_some() {}
        inner.tasks.spawn(task);
    }

    /// Aborts every task and refuses new ones.
    pub(super) fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.tasks.abort_all();
    }

    /// Tasks not yet finished (tests use it to prove nothing outlives its client).
    #[cfg(test)]
    pub(super) fn live_tasks(&self) -> usize {
        let mut inner = self.lock();
        while inner.tasks.try_join_next().is_some() {}
        inner.tasks.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while the lock is held; if something did, the set is still
        // usable, and aborting tasks must keep working during shutdown.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// hyper's HTTP/2 server runs each stream on a task of its own; spawning them in the
/// scope means dropping the server also ends streams whose service never answers.
impl<F> hyper::rt::Executor<F> for Scope
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.spawn(async move {
            let _ = fut.await;
        });
    }
}
