//! The JSON shapes the catalog answers with.

use bazaar_runtime::time::rfc3339_micros;
use serde::Serialize;

use crate::domain::{Money, Product};

/// A product as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct ProductView {
    /// UUIDv7.
    pub id: String,
    /// Unique merchant code.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Long text, possibly empty.
    pub description: String,
    /// Category slug.
    pub category: String,
    /// Current price.
    pub price: PriceView,
    /// Whether inventory last reported available stock (a replicated, eventually
    /// consistent copy of inventory's level).
    pub in_stock: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// A price as clients see it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PriceView {
    /// Minor units (cents).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: &'static str,
}

/// One page of products.
#[derive(Debug, Clone, Serialize)]
pub struct ProductPage {
    /// Newest first.
    pub items: Vec<ProductView>,
    /// The cursor of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<Money> for PriceView {
    fn from(m: Money) -> Self {
        PriceView {
            amount_minor: m.amount_minor(),
            currency: m.currency().code(),
        }
    }
}

impl From<&Product> for ProductView {
    fn from(p: &Product) -> Self {
        ProductView {
            id: p.id.to_string(),
            sku: p.sku.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            description: p.description.as_str().to_owned(),
            category: p.category.as_str().to_owned(),
            price: p.price.into(),
            in_stock: p.in_stock,
            created_at: rfc3339_micros(p.created_at),
        }
    }
}
