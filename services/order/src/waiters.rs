//! Per-order wake-ups for requests waiting on a placement's outcome (`Prefer: wait`).
//!
//! A waiting request registers for its order id; the saga worker wakes exactly the waiters
//! of the order whose status it changed. Waking every waiter on every change would make
//! each change cost one database read per waiting request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::Notify;

/// The waiters of each order, by order id.
#[derive(Debug, Default)]
pub struct OrderWaiters {
    by_order: Mutex<HashMap<String, Arc<Notify>>>,
}

/// A registration: wakes when the order changes; unregisters when dropped.
#[derive(Debug)]
pub struct Waiter<'a> {
    owner: &'a OrderWaiters,
    order_id: String,
    notify: Arc<Notify>,
}

impl OrderWaiters {
    /// Registers a waiter for `order_id`.
    pub fn register(&self, order_id: &str) -> Waiter<'_> {
        let notify = self
            .by_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(order_id.to_owned())
            .or_default()
            .clone();
        Waiter {
            owner: self,
            order_id: order_id.to_owned(),
            notify,
        }
    }

    /// Wakes the waiters of `order_id`, if any.
    pub fn changed(&self, order_id: &str) {
        let notify = self
            .by_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(order_id)
            .cloned();
        if let Some(n) = notify {
            n.notify_waiters();
        }
    }

    /// Orders with at least one waiter (for tests).
    pub fn len(&self) -> usize {
        self.by_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Waiter<'_> {
    /// Resolves when the order changes after this call began (`Notify::notified` semantics:
    /// create the future before reading the state it guards).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut map = self
            .owner
            .by_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map's own reference and ours: no other waiter is left.
        if Arc::strong_count(&self.notify) <= 2 {
            map.remove(&self.order_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_waiters_of_the_changed_order_wake_and_entries_are_removed() {
        let waiters = OrderWaiters::default();
        let a = waiters.register("a");
        let b = waiters.register("b");
        {
            let a_fut = a.notified();
            let b_fut = b.notified();
            tokio::pin!(a_fut, b_fut);
            a_fut.as_mut().enable();
            b_fut.as_mut().enable();
            waiters.changed("a");
            assert!(futures::poll!(a_fut.as_mut()).is_ready());
            assert!(futures::poll!(b_fut.as_mut()).is_pending());
        }
        assert_eq!(waiters.len(), 2);
        drop(a);
        assert_eq!(waiters.len(), 1);
        let b2 = waiters.register("b");
        drop(b);
        assert_eq!(waiters.len(), 1, "b still has a waiter");
        drop(b2);
        assert!(waiters.is_empty());
        waiters.changed("nobody");
    }
}
