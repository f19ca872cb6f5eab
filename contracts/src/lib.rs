//! What services publish to each other, as data: the versioned event payloads
//! (`bazaar.<service>.<event>.v1`) with a JSON Schema for each in `contracts/events/`, the
//! rule for the product code catalog and inventory share in them ([`sku::Sku`]), and the
//! demo catalog that `bazaar up` seeds (catalog creates the products, inventory stocks them).
//!
//! A payload type never changes shape once published: a breaking change is a new type with
//! the next version (`OrderConfirmedV2`) published beside the old one until every consumer
//! has moved. Adding an optional field is not breaking. `cargo test -p bazaar-contracts`
//! fails when a schema file no longer matches its type (`BAZAAR_BLESS=1` rewrites them).
#![forbid(unsafe_code)]

pub mod demo;
pub mod events;
pub mod sku;

pub use events::EventPayload;
