//! Events between Bazaar services, delivered at least once and applied effectively once.
//!
//! A producer writes each event into its **outbox** table with [`publish`], inside the same
//! transaction as the state change it announces, so an event exists if and only if the change
//! committed. A **relay** task of the producer's [`Bus`] then makes committed events
//! deliverable, whatever happened to the process in between:
//!
//! - **feeds** (the default, no broker): the relay gives each committed event the next
//!   position of the producer's feed, in the order it saw the commits, and the producer serves
//!   `GET /internal/events?after=<pos>` (long-polling) from [`Bus::routes`]. Consumers pull
//!   and keep their cursor in their own database.
//! - **NATS JetStream** ([`BusConfig::url`] = `nats://…`): the relay publishes each event to
//!   the stream `BAZAAR_<SERVICE>` with `Nats-Msg-Id` = event id (the broker drops a
//!   republished duplicate) and marks it sent after the broker's ack. Consumers are durable
//!   pull consumers that ack only after their transaction committed.
//!
//! A consumer ([`Bus::subscribe`]) runs its [`Handler`] inside a transaction that also records
//! the event id in its **inbox**: a redelivered event is acknowledged without running the
//! handler again. A failing handler is retried in place with exponential backoff and jitter
//! ([`RetryPolicy`]); after the last attempt, or at once for [`HandlerError::Permanent`], the
//! event goes to the **dead-letter** table, from where an operator redrives it over
//! `POST /admin/dead-letters/{service}/{id}/redrive`.
//!
//! For consistency checks, [`Bus::state_summary`] reports what the messaging tables hold
//! (unsent outbox rows, inbox, dead letters, cursors): every service embeds it in its
//! `GET /admin/state`, and the bus serves it alone at `GET /admin/messaging`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use bazaar_contracts::events::ProductCreatedV1;
//! use bazaar_messaging::{Bus, BusConfig, Envelope, Handler, HandlerError, Subscription};
//! use bazaar_store::Tx;
//! use futures::future::BoxFuture;
//!
//! struct IndexProduct;
//! impl Handler for IndexProduct {
//!     fn handle<'a>(&'a self, tx: &'a mut Tx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
//!         Box::pin(async move {
//!             let p: ProductCreatedV1 = event.data()?;
//!             sqlx::query("INSERT INTO stock (sku, on_hand) VALUES ($1, 0) ON CONFLICT (sku) DO NOTHING")
//!                 .bind(p.sku)
//!                 .execute(&mut **tx)
//!                 .await?;
//!             Ok(())
//!         })
//!     }
//! }
//!
//! # async fn run(db: bazaar_store::Db, resolver: Arc<dyn bazaar_discovery::Resolver>) -> anyhow::Result<()> {
//! let stop = tokio_util::sync::CancellationToken::new();
//! let bus = Bus::start("inventory", db.clone(), resolver, BusConfig::default(), stop).await?;
//! bus.subscribe(
//!     Subscription { name: "inventory.products", producer: "catalog", types: &["bazaar.catalog.product_created.v1"] },
//!     IndexProduct,
//! );
//! let router = bus.routes(); // merged into the service's router, inside its ServiceStack
//! # let _ = router; Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod admin;
mod bus;
mod config;
mod consumer;
mod envelope;
mod feed;
mod handler;
mod metrics;
mod nats;
mod outbox;
mod relay;
mod schema;
mod state;

pub use bus::Bus;
pub use config::{BusConfig, RetryPolicy, Subscription};
pub use envelope::{Envelope, EnvelopeError, SPECVERSION};
pub use feed::{FeedQuery, FeedQueryError, MAX_FEED_LIMIT, MAX_FEED_WAIT_SECS};
pub use handler::{Handler, HandlerError};
pub use outbox::publish;
pub use schema::MIGRATIONS;
pub use state::{read_rows, read_snapshot, MessagingSummary, SubscriptionState};
