//! Reading and writing products.

use anyhow::Context as _;
use bazaar_store::{is_unique_violation, Db};
use sqlx::{any::AnyRow, Row};

use super::StoreError;
use crate::domain::{
    Category, Currency, Description, Limit, Money, NewProduct, Product, ProductId, ProductName,
    ProductPatch, SearchText, Sku,
};

const COLUMNS: &str =
    "id, sku, name, description, category, price_minor, currency, created_at, updated_at";

/// What a SELECT reads: the columns and whether the replicated stock level is positive.
const SELECT_COLUMNS: &str =
    "id, sku, name, description, category, price_minor, currency, created_at, updated_at, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM stock_levels s WHERE s.sku = products.sku AND s.available > 0) \
     THEN 1 ELSE 0 END AS BIGINT) AS in_stock";

/// Which products a list shows, and from where.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Case-insensitive substring of the name or description.
    pub search: Option<SearchText>,
    /// Exact category.
    pub category: Option<Category>,
    /// Only products older than this one (the last of the previous page).
    pub after: Option<ProductId>,
    /// Page size.
    pub limit: Limit,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// Newest first.
    pub items: Vec<Product>,
    /// Whether more products follow the last item.
    pub has_more: bool,
}

/// Inserts a new product with a fresh id; [`StoreError::DuplicateSku`] if the SKU is taken.
#[tracing::instrument(skip(db, new), fields(sku = %new.sku))]
pub async fn insert(db: &Db, new: NewProduct, now_micros: i64) -> Result<Product, StoreError> {
    let product = Product {
        id: ProductId::generate(),
        sku: new.sku,
        name: new.name,
        description: new.description,
        category: new.category,
        price: new.price,
        created_at: now_micros,
        updated_at: now_micros,
        in_stock: false,
    };
    let mut tx = db.begin().await.context("begin insert product")?;
    let inserted = insert_row(&mut tx, &product, false).await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(StoreError::DuplicateSku),
        Err(e) => return Err(anyhow::Error::new(e).context("insert product").into()),
    }
    bazaar_messaging::publish(&mut tx, &created_event(&product))
        .await
        .context("publish product_created")?;
    let product = Product {
        in_stock: super::stock::in_stock(&mut tx, product.sku.as_str())
            .await
            .context("read stock level")?,
        ..product
    };
    tx.commit().await.context("commit insert product")?;
    Ok(product)
}

/// The `product_created` event of `product`.
pub(crate) fn created_event(product: &Product) -> bazaar_contracts::events::ProductCreatedV1 {
    bazaar_contracts::events::ProductCreatedV1 {
        product_id: product.id.to_string(),
        sku: product.sku.as_str().to_owned(),
        name: product.name.as_str().to_owned(),
        category: product.category.as_str().to_owned(),
        price: money_v1(product.price),
    }
}

fn money_v1(m: Money) -> bazaar_contracts::events::MoneyV1 {
    bazaar_contracts::events::MoneyV1 {
        amount_minor: m.amount_minor(),
        currency: m.currency().code().to_owned(),
    }
}

/// Inserts `product`; with `skip_existing_sku` a taken SKU inserts nothing (returns 0 rows).
pub(crate) async fn insert_row(
    tx: &mut bazaar_store::Tx,
    product: &Product,
    skip_existing_sku: bool,
) -> Result<u64, sqlx::Error> {
    let on_conflict = if skip_existing_sku {
        " ON CONFLICT (sku) DO NOTHING"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO products ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9){on_conflict}"
    );
    let done = sqlx::query(&sql)
        .bind(product.id.to_string())
        .bind(product.sku.as_str().to_owned())
        .bind(product.name.as_str().to_owned())
        .bind(product.description.as_str().to_owned())
        .bind(product.category.as_str().to_owned())
        .bind(product.price.amount_minor())
        .bind(product.price.currency().code())
        .bind(product.created_at)
        .bind(product.updated_at)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// The product with `id`, if any.
#[tracing::instrument(skip(db), fields(product_id = %id))]
pub async fn get(db: &Db, id: ProductId) -> anyhow::Result<Option<Product>> {
    let sql = format!("SELECT {SELECT_COLUMNS} FROM products WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_optional(db.reader())
        .await
        .context("select product")?;
    row.as_ref().map(decode).transpose()
}

/// Applies `patch` to the product with `id`; `None` if there is no such product.
#[tracing::instrument(skip(db, patch), fields(product_id = %id))]
pub async fn update(
    db: &Db,
    id: ProductId,
    patch: &ProductPatch,
    now_micros: i64,
) -> anyhow::Result<Option<Product>> {
    if patch.is_empty() {
        // Nothing to change: not even `updated_at`.
        return get(db, id).await;
    }
    let sql = format!(
        "UPDATE products SET name = COALESCE($2, name), description = COALESCE($3, description), \
         price_minor = COALESCE($4, price_minor), currency = COALESCE($5, currency), updated_at = $6 \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let mut tx = db.begin().await.context("begin update product")?;
    let row = sqlx::query(&sql)
        .bind(id.to_string())
        .bind(patch.name.as_ref().map(|n| n.as_str().to_owned()))
        .bind(patch.description.as_ref().map(|d| d.as_str().to_owned()))
        .bind(patch.price.map(Money::amount_minor))
        .bind(patch.price.map(|p| p.currency().code()))
        .bind(now_micros)
        .fetch_optional(&mut *tx)
        .await
        .context("update product")?;
    let Some(mut product) = row.as_ref().map(decode).transpose()? else {
        return Ok(None);
    };
    product.in_stock = super::stock::in_stock(&mut tx, product.sku.as_str())
        .await
        .context("read stock level")?;
    let event = bazaar_contracts::events::ProductUpdatedV1 {
        product_id: product.id.to_string(),
        sku: product.sku.as_str().to_owned(),
        name: product.name.as_str().to_owned(),
        price: money_v1(product.price),
    };
    bazaar_messaging::publish(&mut tx, &event)
        .await
        .context("publish product_updated")?;
    tx.commit().await.context("commit update product")?;
    Ok(Some(product))
}

/// One page of products, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db, query: &ListQuery) -> anyhow::Result<Page> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    if let Some(search) = &query.search {
        args.push(search.like_pattern());
        let n = args.len();
        // LOWER on both sides: PostgreSQL's LIKE is case-sensitive, SQLite's is not.
        clauses.push(format!(
            "(LOWER(name) LIKE ${n} ESCAPE '\\' OR LOWER(description) LIKE ${n} ESCAPE '\\')"
        ));
    }
    if let Some(category) = &query.category {
        args.push(category.as_str().to_owned());
        clauses.push(format!("category = ${}", args.len()));
    }
    if let Some(after) = query.after {
        // Keyset pagination: a product created between two page requests sorts before the
        // cursor and so can never push a product seen already onto the next page.
        args.push(after.to_string());
        clauses.push(format!("id < ${}", args.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM products{filter} ORDER BY id DESC LIMIT ${}",
        args.len() + 1
    );
    let limit = usize::from(query.limit.get());
    let mut q = sqlx::query(&sql);
    for arg in args {
        q = q.bind(arg);
    }
    // One more than asked for tells whether a next page exists without a second query.
    let rows = q
        .bind(i64::from(query.limit.get()) + 1)
        .fetch_all(db.reader())
        .await
        .context("list products")?;
    let has_more = rows.len() > limit;
    let items = rows
        .iter()
        .take(limit)
        .map(decode)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Page { items, has_more })
}

/// A row back into a product; stored values are re-parsed, so a row edited by hand into an
/// invalid state is an error here rather than a wrong answer later.
fn decode(row: &AnyRow) -> anyhow::Result<Product> {
    let text = |col: &str| -> anyhow::Result<String> {
        row.try_get::<String, _>(col)
            .with_context(|| format!("column {col}"))
    };
    let int = |col: &str| -> anyhow::Result<i64> {
        row.try_get::<i64, _>(col)
            .with_context(|| format!("column {col}"))
    };
    let id = text("id")?;
    let bad = |what: &str| anyhow::anyhow!("stored product {id} has an invalid {what}");
    let currency = Currency::parse(&text("currency")?).map_err(|_| bad("currency"))?;
    Ok(Product {
        id: ProductId::parse(&id).ok_or_else(|| bad("id"))?,
        sku: Sku::parse(&text("sku")?).map_err(|_| bad("sku"))?,
        name: ProductName::parse(&text("name")?).map_err(|_| bad("name"))?,
        description: Description::parse(&text("description")?).map_err(|_| bad("description"))?,
        category: Category::parse(&text("category")?).map_err(|_| bad("category"))?,
        price: Money::new(int("price_minor")?, currency).map_err(|_| bad("price"))?,
        created_at: int("created_at")?,
        updated_at: int("updated_at")?,
        // Absent from `RETURNING` lists (they cannot read other tables); callers of those
        // fill it in from the stock replica.
        in_stock: row.try_get::<i64, _>("in_stock").is_ok_and(|v| v > 0),
    })
}
