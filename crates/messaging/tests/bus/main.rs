//! Black-box tests of the event bus: real HTTP services, real databases, real NATS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dead_letters;
mod feeds;
mod helpers;
mod nats;
mod postgres;
mod summary;
