//! Writing events: the producer side of the transactional outbox.

use bazaar_contracts::events::EventPayload;
use bazaar_store::Tx;

use crate::envelope::Envelope;

/// Appends `event` to the outbox inside the caller's transaction and returns its event id.
///
/// The event becomes visible to consumers only if `tx` commits, and then always: the relay
/// picks up every committed, unsent row, even one committed just before a crash. Call
/// [`crate::Bus::notify`] after the commit to have it relayed at once rather than at the
/// relay's next poll. The envelope carries the `traceparent` of the request being served.
pub async fn publish<E: EventPayload>(tx: &mut Tx, event: &E) -> Result<String, sqlx::Error> {
    let env = Envelope::new(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    insert(tx, &env).await?;
    Ok(env.id)
}

/// Appends a ready envelope to the outbox.
pub(crate) async fn insert(tx: &mut Tx, env: &Envelope) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO msg_outbox (id, type, subject, envelope, created_us, pos) \
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(&env.id)
    .bind(&env.ty)
    .bind(env.subject.as_deref())
    .bind(env.to_json())
    .bind(bazaar_runtime::time::now_micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
