#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The order service over real HTTP and gRPC, against fake catalog, inventory and payment
//! servers, on SQLite and (when `BAZAAR_TEST_POSTGRES_URL` is set) on PostgreSQL: every test
//! in a `both!` module runs once per backend.

mod fakes;
mod helpers;

mod cancel;
mod crash;
mod events;
mod idempotency;
mod listing;
mod operations;
mod placement;
mod state;
mod validation;
