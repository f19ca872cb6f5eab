//! The catalog's types and rules, free of I/O: every value that reaches the store has been
//! parsed into one of these types, so the store and handlers never re-check a field.

mod category;
mod listing;
mod money;
mod product;
mod product_id;
mod text;

pub use bazaar_contracts::sku::{Sku, SkuError};
pub use bazaar_runtime::page::{Limit, LimitError};
pub use category::{Category, CategoryError};
pub use listing::{SearchText, SearchTextError};
pub use money::{AmountError, Currency, CurrencyError, Money};
pub use product::{NewProduct, Product, ProductPatch};
pub use product_id::ProductId;
pub use text::{Description, DescriptionError, ProductName, ProductNameError};
