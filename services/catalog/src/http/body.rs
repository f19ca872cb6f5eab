//! Request bodies, taken loosely (every field any JSON value) and then parsed into domain
//! commands, collecting every invalid or missing field with its JSON pointer, so a client
//! learns about all its mistakes in one 422.

use bazaar_runtime::FieldError;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::domain::{
    Category, Currency, Description, Money, NewProduct, ProductName, ProductPatch, Sku,
};

/// `POST /api/v1/products`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateProductBody {
    #[serde(default, deserialize_with = "present")]
    sku: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    category: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    price: Option<Value>,
}

/// `PATCH /api/v1/products/{id}`: only `price`, `name` and `description` can change; other
/// fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PatchProductBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    price: Option<Value>,
}

/// A present field is `Some`, even when it is `null`: `{"name": null}` in a patch is an
/// invalid name, not an absent one.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Collects field errors while parsing.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, pointer: &str, detail: impl Into<String>) {
        self.0.push(FieldError::new(pointer, detail));
    }

    /// A field that must be present and a string.
    fn required_str<'a>(&mut self, value: Option<&'a Value>, pointer: &str) -> Option<&'a str> {
        match value {
            None => {
                self.add(pointer, "is required");
                None
            }
            Some(v) => self.string(v, pointer),
        }
    }

    fn string<'a>(&mut self, value: &'a Value, pointer: &str) -> Option<&'a str> {
        if let Some(s) = value.as_str() {
            Some(s)
        } else {
            self.add(pointer, "must be a string");
            None
        }
    }

    fn check<T, E: std::fmt::Display>(&mut self, result: Result<T, E>, pointer: &str) -> Option<T> {
        result.map_err(|e| self.add(pointer, e.to_string())).ok()
    }

    /// `{amount_minor, currency}` at `pointer`.
    fn money(&mut self, value: &Value, pointer: &str) -> Option<Money> {
        let Some(obj) = value.as_object() else {
            self.add(pointer, "must be an object with amount_minor and currency");
            return None;
        };
        let amount_ptr = format!("{pointer}/amount_minor");
        let amount = match obj.get("amount_minor") {
            None | Some(Value::Null) => {
                self.add(&amount_ptr, "is required");
                None
            }
            Some(v) => match v.as_i64() {
                Some(n) => self.check(Money::check_amount(n), &amount_ptr),
                // A u64 beyond i64 is an integer, just far out of range.
                None if v.is_u64() => self.check(Money::check_amount(i64::MAX), &amount_ptr),
                None => {
                    self.add(&amount_ptr, "must be an integer (minor units, e.g. cents)");
                    None
                }
            },
        };
        let currency_ptr = format!("{pointer}/currency");
        let currency = match obj.get("currency") {
            None | Some(Value::Null) => {
                self.add(&currency_ptr, "is required");
                None
            }
            Some(v) => self
                .string(v, &currency_ptr)
                .and_then(|s| self.check(Currency::parse(s), &currency_ptr)),
        };
        Money::new(amount?, currency?).ok()
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

fn non_null(v: &Option<Value>) -> Option<&Value> {
    v.as_ref().filter(|v| !v.is_null())
}

impl TryFrom<CreateProductBody> for NewProduct {
    type Error = Vec<FieldError>;

    fn try_from(body: CreateProductBody) -> Result<Self, Self::Error> {
        let mut e = Errors::default();
        let sku = e
            .required_str(non_null(&body.sku), "/sku")
            .and_then(|s| e.check(Sku::parse(s), "/sku"));
        let name = e
            .required_str(non_null(&body.name), "/name")
            .and_then(|s| e.check(ProductName::parse(s), "/name"));
        let description = e
            .required_str(non_null(&body.description), "/description")
            .and_then(|s| e.check(Description::parse(s), "/description"));
        let category = e
            .required_str(non_null(&body.category), "/category")
            .and_then(|s| e.check(Category::parse(s), "/category"));
        let price = match non_null(&body.price) {
            None => {
                e.add("/price", "is required");
                None
            }
            Some(v) => e.money(v, "/price"),
        };
        match (sku, name, description, category, price) {
            (Some(sku), Some(name), Some(description), Some(category), Some(price))
                if e.0.is_empty() =>
            {
                Ok(NewProduct {
                    sku,
                    name,
                    description,
                    category,
                    price,
                })
            }
            _ => Err(e.0),
        }
    }
}

impl TryFrom<PatchProductBody> for ProductPatch {
    type Error = Vec<FieldError>;

    fn try_from(body: PatchProductBody) -> Result<Self, Self::Error> {
        let mut e = Errors::default();
        let mut patch = ProductPatch::default();
        if let Some(v) = &body.name {
            patch.name = e
                .string(v, "/name")
                .and_then(|s| e.check(ProductName::parse(s), "/name"));
        }
        if let Some(v) = &body.description {
            patch.description = e
                .string(v, "/description")
                .and_then(|s| e.check(Description::parse(s), "/description"));
        }
        if let Some(v) = &body.price {
            patch.price = e.money(v, "/price");
        }
        e.finish(patch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(v: Value) -> Result<NewProduct, Vec<FieldError>> {
        NewProduct::try_from(serde_json::from_value::<CreateProductBody>(v).unwrap())
    }

    fn patch(v: Value) -> Result<ProductPatch, Vec<FieldError>> {
        ProductPatch::try_from(serde_json::from_value::<PatchProductBody>(v).unwrap())
    }

    fn pointers(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn a_valid_body_becomes_a_command() {
        let p = create(json!({
            "sku": "bk-1", "name": " Book ", "description": "", "category": "Books",
            "price": {"amount_minor": 1299, "currency": "USD"}, "admin": true
        }))
        .unwrap();
        assert_eq!(p.sku.as_str(), "BK-1");
        assert_eq!(p.name.as_str(), "Book");
        assert_eq!(p.category.as_str(), "books");
        assert_eq!(p.price.amount_minor(), 1299);
    }

    #[test]
    fn every_missing_field_is_reported() {
        let errors = create(json!({})).unwrap_err();
        assert_eq!(
            pointers(&errors),
            ["/sku", "/name", "/description", "/category", "/price"]
        );
        let errors = create(
            json!({"sku": null, "name": null, "description": null, "category": null, "price": {}}),
        )
        .unwrap_err();
        assert_eq!(
            pointers(&errors),
            [
                "/sku",
                "/name",
                "/description",
                "/category",
                "/price/amount_minor",
                "/price/currency"
            ]
        );
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let errors = create(json!({
            "sku": "-x", "name": 5, "description": "a\u{0}b", "category": "Home & Garden",
            "price": {"amount_minor": -1, "currency": "usd"}
        }))
        .unwrap_err();
        assert_eq!(
            pointers(&errors),
            [
                "/sku",
                "/name",
                "/description",
                "/category",
                "/price/amount_minor",
                "/price/currency"
            ]
        );
    }

    #[test]
    fn non_integer_and_huge_amounts_are_refused() {
        for amount in [
            json!(12.5),
            json!("1299"),
            json!(1e300),
            json!(u64::MAX),
            json!(true),
        ] {
            let errors =
                patch(json!({"price": {"amount_minor": amount, "currency": "EUR"}})).unwrap_err();
            assert_eq!(pointers(&errors), ["/price/amount_minor"], "{amount}");
        }
        assert_eq!(
            pointers(&patch(json!({"price": "12"})).unwrap_err()),
            ["/price"]
        );
    }

    #[test]
    fn a_patch_takes_only_what_it_is_given() {
        let p = patch(json!({"name": "New", "sku": "IGNORED"})).unwrap();
        assert_eq!(p.name.unwrap().as_str(), "New");
        assert!(p.description.is_none() && p.price.is_none());
        assert!(patch(json!({})).unwrap().is_empty());
    }

    #[test]
    fn an_explicit_null_in_a_patch_is_invalid() {
        let errors = patch(json!({"name": null, "description": null, "price": null})).unwrap_err();
        assert_eq!(pointers(&errors), ["/name", "/description", "/price"]);
    }
}
