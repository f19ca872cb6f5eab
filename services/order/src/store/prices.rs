//! The local replica of the catalog's prices.

use std::collections::HashMap;

use anyhow::Context as _;
use bazaar_store::{Db, Tx};

use super::{int, placeholders, text};
use crate::domain::{CatalogPrice, Money};

/// The known prices of `product_ids`, by product id (unknown ids are left out).
pub async fn get_many(
    db: &Db,
    product_ids: &[String],
) -> anyhow::Result<HashMap<String, CatalogPrice>> {
    if product_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT product_id, sku, name, price_minor, currency FROM prices WHERE product_id IN ({})",
        placeholders(1, product_ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in product_ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(db.reader()).await.context("select prices")?;
    rows.iter()
        .map(|r| {
            Ok((
                text(r, "product_id")?,
                CatalogPrice {
                    sku: text(r, "sku")?,
                    name: text(r, "name")?,
                    price: Money {
                        amount_minor: int(r, "price_minor")?,
                        currency: text(r, "currency")?,
                    },
                },
            ))
        })
        .collect()
}

/// Stores prices fetched from the catalog for products the replica has not heard of yet.
/// They carry time 0: any event about the product, even an older one, replaces them, so the
/// events alone decide the replica's final state.
pub async fn insert_fetched(db: &Db, fetched: &[(String, CatalogPrice)]) -> anyhow::Result<()> {
    if fetched.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await.context("begin insert prices")?;
    for (id, p) in fetched {
        sqlx::query(
            "INSERT INTO prices (product_id, sku, name, price_minor, currency, updated_us) \
             VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (product_id) DO NOTHING",
        )
        .bind(id)
        .bind(&p.sku)
        .bind(&p.name)
        .bind(p.price.amount_minor)
        .bind(&p.price.currency)
        .execute(&mut *tx)
        .await
        .context("insert fetched price")?;
    }
    tx.commit().await.context("commit insert prices")?;
    Ok(())
}

/// Applies a catalog event published at `event_us`, unless the replica already holds a newer
/// state of the product (events may arrive out of order after a redrive).
pub async fn apply_event(
    tx: &mut Tx,
    product_id: &str,
    price: &CatalogPrice,
    event_us: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO prices (product_id, sku, name, price_minor, currency, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (product_id) DO UPDATE SET \
         sku = excluded.sku, name = excluded.name, price_minor = excluded.price_minor, \
         currency = excluded.currency, updated_us = excluded.updated_us \
         WHERE prices.updated_us <= excluded.updated_us",
    )
    .bind(product_id)
    .bind(&price.sku)
    .bind(&price.name)
    .bind(price.price.amount_minor)
    .bind(&price.price.currency)
    .bind(event_us)
    .execute(&mut **tx)
    .await
    .context("upsert price")?;
    Ok(())
}
