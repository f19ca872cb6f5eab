//! The product entity and the commands that change it.

use super::{Category, Description, Money, ProductId, ProductName, Sku};

/// A product as the catalog holds it.
///
/// Every field is already valid by construction; the entity adds no rules of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Time-ordered id.
    pub id: ProductId,
    /// Unique merchant code.
    pub sku: Sku,
    /// Display name.
    pub name: ProductName,
    /// Long text, possibly empty.
    pub description: Description,
    /// Browsing category.
    pub category: Category,
    /// Current price.
    pub price: Money,
    /// When it was created, µs since the Unix epoch.
    pub created_at: i64,
    /// When it last changed, µs since the Unix epoch.
    pub updated_at: i64,
    /// Whether inventory last reported available stock for the SKU: the catalog's replicated,
    /// eventually consistent copy (`false` until inventory has reported the SKU).
    pub in_stock: bool,
}

/// Everything needed to create a product (the id and times are assigned on insert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// Unique merchant code.
    pub sku: Sku,
    /// Display name.
    pub name: ProductName,
    /// Long text, possibly empty.
    pub description: Description,
    /// Browsing category.
    pub category: Category,
    /// Price.
    pub price: Money,
}

/// A partial update: only the fields that are `Some` change. SKU and category are fixed
/// once created (other services key stock and orders on the SKU).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<ProductName>,
    /// New description.
    pub description: Option<Description>,
    /// New price.
    pub price: Option<Money>,
}

impl ProductPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none() && self.price.is_none()
    }
}
