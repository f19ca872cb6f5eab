//! A cached instance set kept fresh by a background task.

use std::{future::Future, sync::Arc};

use tokio::{sync::watch, task::JoinHandle, time::Instant};

use super::FIRST_ANSWER_WAIT;
use crate::Instance;

/// The latest set published by the task; `None` until its first answer.
pub(crate) type Publisher = watch::Sender<Option<Arc<[Instance]>>>;

/// One service's cache and the task that fills it (aborted when the feed is dropped).
pub(crate) struct Feed {
    rx: watch::Receiver<Option<Arc<[Instance]>>>,
    /// Callers wait for a first answer until then, and never after.
    first_deadline: Instant,
    task: JoinHandle<()>,
}

impl Feed {
    /// Starts `task` with the sending side of a new cache. Must run inside a tokio runtime.
    pub(crate) fn spawn<F, Fut>(task: F) -> Feed
    where
        F: FnOnce(Publisher) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = watch::channel(None);
        Feed {
            rx,
            first_deadline: Instant::now() + FIRST_ANSWER_WAIT,
            task: tokio::spawn(task(tx)),
        }
    }

    /// The cached set, waiting for the first answer if there is none yet and the first-answer
    /// window is still open.
    pub(crate) async fn current(&self) -> Arc<[Instance]> {
        if let Some(set) = self.rx.borrow().clone() {
            return set;
        }
        let mut rx = self.rx.clone();
        let _ = tokio::time::timeout_at(self.first_deadline, rx.wait_for(Option::is_some)).await;
        let current = rx.borrow().clone();
        current.unwrap_or_else(|| Arc::from(Vec::new()))
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Replaces the cached set if it differs; `true` if it did.
pub(crate) fn publish(tx: &Publisher, instances: Vec<Instance>) -> bool {
    tx.send_if_modified(|current| {
        if current.as_deref() == Some(instances.as_slice()) {
            return false;
        }
        *current = Some(Arc::from(instances));
        true
    })
}
