//! What the catalog consumes: inventory's `level_changed`, into the stock replica.

use bazaar_contracts::events::{EventPayload, LevelChangedV1};
use bazaar_messaging::{Envelope, Handler, HandlerError, Subscription};
use bazaar_store::Tx;
use futures::future::BoxFuture;

use crate::store::stock;

/// The subscription to inventory's stock levels.
pub const LEVELS: Subscription = Subscription {
    name: "catalog.stock_levels",
    producer: "inventory",
    types: &[LevelChangedV1::TYPE],
};

/// Applies `level_changed` events to the stock replica (older events never overwrite newer).
#[derive(Debug, Clone, Copy)]
pub struct LevelChanged;

impl Handler for LevelChanged {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let level: LevelChangedV1 = event.data()?;
            let at = event_time_micros(&event.time)
                .ok_or_else(|| HandlerError::Permanent(anyhow::anyhow!("bad event time")))?;
            stock::apply_level(tx, &level.sku, level.available, at).await?;
            Ok(())
        })
    }
}

/// An RFC 3339 time as µs since the Unix epoch.
fn event_time_micros(t: &str) -> Option<i64> {
    let dt = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn event_times_parse_to_micros() {
        assert_eq!(
            event_time_micros("1970-01-01T00:00:01.000002Z"),
            Some(1_000_002)
        );
        assert_eq!(event_time_micros("yesterday"), None);
    }
}
