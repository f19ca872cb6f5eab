//! The demo catalog, inserted into an empty database.

use anyhow::Context as _;
use bazaar_store::Db;
use sqlx::Row;

use crate::{
    demo,
    domain::{Category, Currency, Description, Money, Product, ProductId, ProductName, Sku},
    store::products::{created_event, insert_row},
};

/// Inserts the demo products if the catalog has no products at all; returns how many were
/// inserted (0 when there were products already).
///
/// Replicas seeding at the same time cannot duplicate anything: SKUs are unique and a taken
/// SKU is skipped.
#[tracing::instrument(skip(db))]
pub async fn seed_demo(db: &Db, now_micros: i64) -> anyhow::Result<u64> {
    let products = demo_products(now_micros)?;
    let mut tx = db.begin().await.context("begin demo seed")?;
    let existing: i64 = sqlx::query("SELECT COUNT(*) FROM products")
        .fetch_one(&mut *tx)
        .await
        .context("count products")?
        .try_get(0)?;
    if existing > 0 {
        return Ok(0);
    }
    let mut inserted = 0;
    for product in &products {
        let n = insert_row(&mut tx, product, true)
            .await
            .context("insert demo product")?;
        if n > 0 {
            bazaar_messaging::publish(&mut tx, &created_event(product))
                .await
                .context("publish product_created")?;
        }
        inserted += n;
    }
    tx.commit().await.context("commit demo seed")?;
    Ok(inserted)
}

/// The demo data as products. Ids are generated last-first so that the newest-first list
/// shows them in the order of [`demo::PRODUCTS`].
fn demo_products(now_micros: i64) -> anyhow::Result<Vec<Product>> {
    demo::PRODUCTS
        .iter()
        .rev()
        .map(|d| {
            let invalid =
                |what: &str| anyhow::anyhow!("demo product {} has an invalid {what}", d.sku);
            Ok(Product {
                id: ProductId::generate(),
                sku: Sku::parse(d.sku).map_err(|_| invalid("sku"))?,
                name: ProductName::parse(d.name).map_err(|_| invalid("name"))?,
                description: Description::parse(d.description)
                    .map_err(|_| invalid("description"))?,
                category: Category::parse(d.category).map_err(|_| invalid("category"))?,
                price: Money::new(d.price_minor, Currency::USD).map_err(|_| invalid("price"))?,
                created_at: now_micros,
                updated_at: now_micros,
                in_stock: false,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_product_is_valid_and_skus_are_unique() {
        let products = demo_products(0).unwrap();
        assert!(products.len() >= 24);
        let skus: std::collections::HashSet<_> = products.iter().map(|p| p.sku.clone()).collect();
        assert_eq!(skus.len(), products.len());
        let categories: std::collections::HashSet<_> =
            products.iter().map(|p| p.category.clone()).collect();
        assert!(categories.len() >= 5);
    }
}
