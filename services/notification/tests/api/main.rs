#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Notification over real HTTP and real event feeds, on SQLite and (when
//! `BAZAAR_TEST_POSTGRES_URL` is set) on PostgreSQL.
//!
//! Each test runs a notification instance fed by two real messaging producers named
//! `identity` and `order` (each an outbox served as a feed), found through a test resolver.

mod helpers;

mod events;
mod list;
mod read;
mod state;
