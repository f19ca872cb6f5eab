//! The stock-movement ledger: one row per change of a SKU's levels.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::Row;

use super::stock::decode_levels;
use crate::domain::{Levels, MovementKind, Sku};

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// UUIDv7.
    pub id: String,
    /// What happened.
    pub kind: MovementKind,
    /// The signed change (see [`MovementKind`]).
    pub quantity: i64,
    /// The order, for reserve, release and commit.
    pub order_id: Option<String>,
    /// When, in microseconds since the Unix epoch.
    pub at_us: i64,
}

/// A SKU's ledger beside its levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// The current levels; `None` if inventory has no record of the SKU.
    pub levels: Option<Levels>,
    /// Every movement, oldest first.
    pub movements: Vec<Movement>,
}

impl Ledger {
    /// `on_hand` as the ledger accounts for it: Σ adjustment + Σ commit.
    pub fn on_hand_from_movements(&self) -> i64 {
        self.sum(&[MovementKind::Adjustment, MovementKind::Commit])
    }

    /// `reserved` as the ledger accounts for it: Σ reserve + Σ release + Σ commit.
    pub fn reserved_from_movements(&self) -> i64 {
        self.sum(&[
            MovementKind::Reserve,
            MovementKind::Release,
            MovementKind::Commit,
        ])
    }

    fn sum(&self, kinds: &[MovementKind]) -> i64 {
        self.movements
            .iter()
            .filter(|m| kinds.contains(&m.kind))
            .map(|m| m.quantity)
            .sum()
    }

    /// Whether the levels are what the ledger says and `0 ≤ reserved ≤ on_hand`.
    pub fn is_consistent(&self) -> bool {
        let levels = self.levels.unwrap_or(Levels {
            on_hand: 0,
            reserved: 0,
        });
        levels.is_sane()
            && levels.on_hand == self.on_hand_from_movements()
            && levels.reserved == self.reserved_from_movements()
    }
}

/// Appends a movement to the ledger.
pub(crate) async fn record(
    tx: &mut Tx,
    sku: &Sku,
    kind: MovementKind,
    quantity: i64,
    order_id: Option<&str>,
    now_micros: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO movements (id, sku, kind, quantity, order_id, at_us) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(sku.as_str())
    .bind(kind.as_str())
    .bind(quantity)
    .bind(order_id)
    .bind(now_micros)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The levels and every movement of `sku`, read in one transaction so they agree.
#[tracing::instrument(skip(db), fields(sku = %sku))]
pub async fn read(db: &Db, sku: &Sku) -> anyhow::Result<Ledger> {
    // A read transaction: on SQLite a snapshot of the WAL, on PostgreSQL one statement per
    // snapshot is not enough, hence REPEATABLE READ.
    let mut tx = db.reader().begin().await.context("begin ledger read")?;
    if db.backend() == bazaar_store::Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await
            .context("set isolation")?;
    }
    let levels = sqlx::query("SELECT on_hand, reserved FROM stock WHERE sku = $1")
        .bind(sku.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("select stock levels")?
        .as_ref()
        .map(decode_levels)
        .transpose()
        .context("decode stock levels")?;
    let rows = sqlx::query(
        "SELECT id, kind, quantity, order_id, at_us FROM movements WHERE sku = $1 \
         ORDER BY at_us, id",
    )
    .bind(sku.as_str())
    .fetch_all(&mut *tx)
    .await
    .context("select movements")?;
    tx.commit().await.context("end ledger read")?;
    let movements = rows
        .iter()
        .map(|r| {
            let kind: String = r.try_get(1)?;
            Ok(Movement {
                id: r.try_get(0)?,
                kind: MovementKind::parse(&kind)
                    .with_context(|| format!("unknown movement kind {kind:?}"))?,
                quantity: r.try_get(2)?,
                order_id: r.try_get(3)?,
                at_us: r.try_get(4)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Ledger { levels, movements })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MovementKind, quantity: i64) -> Movement {
        Movement {
            id: String::new(),
            kind,
            quantity,
            order_id: None,
            at_us: 0,
        }
    }

    #[test]
    fn levels_agree_with_the_sums_of_the_ledger() {
        let ledger = Ledger {
            levels: Some(Levels {
                on_hand: 7,
                reserved: 1,
            }),
            movements: vec![
                m(MovementKind::Adjustment, 10),
                m(MovementKind::Reserve, 3),
                m(MovementKind::Reserve, 1),
                m(MovementKind::Release, -1),
                m(MovementKind::Commit, -2),
                m(MovementKind::Adjustment, -1),
            ],
        };
        assert_eq!(ledger.on_hand_from_movements(), 7);
        assert_eq!(ledger.reserved_from_movements(), 1);
        assert!(ledger.is_consistent());
        let off = Ledger {
            levels: Some(Levels {
                on_hand: 8,
                reserved: 1,
            }),
            ..ledger
        };
        assert!(!off.is_consistent());
    }
}
