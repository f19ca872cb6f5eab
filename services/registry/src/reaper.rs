//! The task that drops instances whose lease has run out.

use std::{
    sync::{Arc, Weak},
    time::Instant,
};

use tokio::{task::JoinHandle, time::MissedTickBehavior};

use crate::{domain::reap_period, store::Table};

/// Reaps `table` every [`reap_period`] of its TTL (≤ 500 ms) until the table is dropped.
pub fn spawn(table: &Arc<Table>) -> JoinHandle<()> {
    let weak: Weak<Table> = Arc::downgrade(table);
    let mut tick = tokio::time::interval(reap_period(table.ttl()));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            tick.tick().await;
            let Some(table) = weak.upgrade() else {
                return;
            };
            table.reap(Instant::now());
        }
    })
}
