//! Request bodies, taken loosely (every field any JSON value) and then parsed into domain
//! values, so every mistake is a 422 with the field's JSON pointer.

use bazaar_runtime::FieldError;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::domain::{OnHand, Quantity};

/// `PUT /api/v1/inventory/{sku}`: a stock count. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StockCountBody {
    #[serde(default, deserialize_with = "present")]
    on_hand: Option<Value>,
}

/// `POST /api/v1/inventory/{sku}/restock`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RestockBody {
    #[serde(default, deserialize_with = "present")]
    quantity: Option<Value>,
}

/// A present field is `Some`, even when it is `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The integer at `pointer`, checked by `check`.
fn integer<T, E: std::fmt::Display>(
    value: Option<&Value>,
    pointer: &str,
    check: impl Fn(i64) -> Result<T, E>,
) -> Result<T, Vec<FieldError>> {
    let error = |detail: String| vec![FieldError::new(pointer, detail)];
    match value {
        None | Some(Value::Null) => Err(error("is required".to_owned())),
        Some(v) => match v.as_i64() {
            Some(n) => check(n).map_err(|e| error(e.to_string())),
            // An integer beyond i64 is still an integer, just far out of range.
            None if v.is_u64() => check(i64::MAX).map_err(|e| error(e.to_string())),
            None => Err(error("must be an integer".to_owned())),
        },
    }
}

impl TryFrom<StockCountBody> for OnHand {
    type Error = Vec<FieldError>;

    fn try_from(body: StockCountBody) -> Result<Self, Self::Error> {
        integer(body.on_hand.as_ref(), "/on_hand", OnHand::new)
    }
}

impl TryFrom<RestockBody> for Quantity {
    type Error = Vec<FieldError>;

    fn try_from(body: RestockBody) -> Result<Self, Self::Error> {
        integer(body.quantity.as_ref(), "/quantity", Quantity::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn count(v: Value) -> Result<OnHand, Vec<FieldError>> {
        OnHand::try_from(serde_json::from_value::<StockCountBody>(v).unwrap())
    }

    fn restock(v: Value) -> Result<Quantity, Vec<FieldError>> {
        Quantity::try_from(serde_json::from_value::<RestockBody>(v).unwrap())
    }

    #[test]
    fn valid_bodies_parse_and_unknown_fields_are_ignored() {
        assert_eq!(
            count(json!({"on_hand": 0, "reserved": 9})).unwrap().get(),
            0
        );
        assert_eq!(count(json!({"on_hand": 42})).unwrap().get(), 42);
        assert_eq!(
            restock(json!({"quantity": 1_000_000})).unwrap().get(),
            1_000_000
        );
    }

    #[test]
    fn every_bad_value_points_at_its_field() {
        for bad in [
            json!({}),
            json!({"on_hand": null}),
            json!({"on_hand": -1}),
            json!({"on_hand": 1.5}),
            json!({"on_hand": "5"}),
            json!({"on_hand": true}),
            json!({"on_hand": u64::MAX}),
            json!({"on_hand": 1_000_000_000_001_i64}),
        ] {
            let errors = count(bad.clone()).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad}");
            assert_eq!(errors[0].pointer, "/on_hand", "{bad}");
        }
        for bad in [
            json!({}),
            json!({"quantity": 0}),
            json!({"quantity": 1_000_001}),
            json!({"quantity": 2.0}),
            json!({"quantity": [1]}),
        ] {
            let errors = restock(bad.clone()).unwrap_err();
            assert_eq!(errors[0].pointer, "/quantity", "{bad}");
        }
    }
}
