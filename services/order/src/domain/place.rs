//! The placement command: a `POST /api/v1/orders` body, parsed and checked field by field,
//! then priced from the catalog's prices.

use std::collections::{HashMap, HashSet};

use bazaar_runtime::FieldError;
use serde_json::{Map, Value};

use super::{is_country_code, Address, Money, OrderLine};

/// The most lines an order may have.
pub const MAX_LINES: usize = 50;
/// The most units of one line.
pub const MAX_QUANTITY: i64 = 100;

const MAX_NAME: usize = 100;
const MAX_LINE: usize = 200;
const MAX_CITY: usize = 100;
const MAX_POSTAL_CODE: usize = 20;
const MAX_CARD_TOKEN: usize = 64;

/// One requested line, before pricing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRequest {
    /// The catalog product id (a UUID, hyphenated lower case).
    pub product_id: String,
    /// Units, 1–100.
    pub quantity: i64,
}

/// What the catalog says a product costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogPrice {
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its price.
    pub price: Money,
}

/// A valid placement request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    /// 1–50 lines, each product at most once.
    pub lines: Vec<LineRequest>,
    /// Where the order goes.
    pub address: Address,
    /// The card token to charge.
    pub card_token: String,
}

/// Collects field errors while parsing.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        self.0.push(FieldError::new(pointer, detail));
    }

    fn object<'a>(
        &mut self,
        v: Option<&'a Value>,
        pointer: &str,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            None | Some(Value::Null) => {
                self.add(pointer, "is required");
                None
            }
            Some(Value::Object(m)) => Some(m),
            Some(_) => {
                self.add(pointer, "must be an object");
                None
            }
        }
    }

    /// A required text field: a string, trimmed, 1–`max` characters, no control characters.
    fn text(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        base: &str,
        max: usize,
    ) -> Option<String> {
        let pointer = format!("{base}/{field}");
        match obj.get(field) {
            None | Some(Value::Null) => {
                self.add(pointer, "is required");
                None
            }
            Some(Value::String(s)) => self.check_text(s, &pointer, max, false),
            Some(_) => {
                self.add(pointer, "must be a string");
                None
            }
        }
    }

    fn check_text(&mut self, s: &str, pointer: &str, max: usize, empty_ok: bool) -> Option<String> {
        let s = s.trim();
        if s.is_empty() && !empty_ok {
            self.add(pointer, "must not be empty");
            None
        } else if s.chars().count() > max {
            self.add(pointer, format!("must be at most {max} characters"));
            None
        } else if s.chars().any(char::is_control) {
            self.add(pointer, "must not contain control characters");
            None
        } else {
            Some(s.to_owned())
        }
    }
}

impl PlaceOrder {
    /// Parses a request body, reporting every invalid or missing field with its pointer.
    /// Unknown fields are ignored.
    pub fn parse(body: &Value) -> Result<PlaceOrder, Vec<FieldError>> {
        let mut e = Errors::default();
        let Some(root) = body.as_object() else {
            e.add("", "must be a JSON object");
            return Err(e.0);
        };
        let lines = parse_lines(&mut e, root.get("items"));
        let address = parse_address(&mut e, root.get("shipping_address"));
        let card_token = parse_payment(&mut e, root.get("payment"));
        match (lines, address, card_token) {
            (Some(lines), Some(address), Some(card_token)) if e.0.is_empty() => Ok(PlaceOrder {
                lines,
                address,
                card_token,
            }),
            _ => Err(e.0),
        }
    }

    /// The distinct product ids, in line order.
    pub fn product_ids(&self) -> Vec<String> {
        self.lines.iter().map(|l| l.product_id.clone()).collect()
    }

    /// Prices every line from `prices` (by product id): the lines and their total, or a
    /// field error for each product the catalog does not know.
    pub fn price(
        &self,
        prices: &HashMap<String, CatalogPrice>,
    ) -> Result<(Vec<OrderLine>, Money), Vec<FieldError>> {
        let mut e = Errors::default();
        let mut lines = Vec::with_capacity(self.lines.len());
        let mut currency: Option<&str> = None;
        let mut total: i64 = 0;
        for (i, line) in self.lines.iter().enumerate() {
            let pointer = format!("/items/{i}/product_id");
            let Some(p) = prices.get(&line.product_id) else {
                e.add(pointer, "is not a product of the catalog");
                continue;
            };
            match currency {
                None => currency = Some(&p.price.currency),
                Some(c) if c != p.price.currency => {
                    e.add(
                        pointer,
                        format!(
                            "is priced in {}, the order in {c}: an order has one currency",
                            p.price.currency
                        ),
                    );
                    continue;
                }
                Some(_) => {}
            }
            let Some(line_total) = p.price.amount_minor.checked_mul(line.quantity) else {
                e.add(pointer, "the line total is too large");
                continue;
            };
            let Some(sum) = total.checked_add(line_total) else {
                e.add(pointer, "the order total is too large");
                continue;
            };
            total = sum;
            lines.push(OrderLine {
                product_id: line.product_id.clone(),
                sku: p.sku.clone(),
                name: p.name.clone(),
                unit_price: p.price.clone(),
                quantity: line.quantity,
                line_total: Money {
                    amount_minor: line_total,
                    currency: p.price.currency.clone(),
                },
            });
        }
        if !e.0.is_empty() {
            return Err(e.0);
        }
        let currency = currency.unwrap_or("USD").to_owned();
        Ok((
            lines,
            Money {
                amount_minor: total,
                currency,
            },
        ))
    }
}

fn parse_lines(e: &mut Errors, v: Option<&Value>) -> Option<Vec<LineRequest>> {
    let items = match v {
        None | Some(Value::Null) => {
            e.add("/items", "is required");
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            e.add("/items", "must be an array of lines");
            return None;
        }
    };
    if items.is_empty() {
        e.add("/items", "must have at least one line");
        return None;
    }
    if items.len() > MAX_LINES {
        e.add("/items", format!("must have at most {MAX_LINES} lines"));
        return None;
    }
    let before = e.0.len();
    let mut seen = HashSet::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let base = format!("/items/{i}");
        let Some(obj) = e.object(Some(item), &base) else {
            continue;
        };
        let product_id = match obj.get("product_id") {
            None | Some(Value::Null) => {
                e.add(format!("{base}/product_id"), "is required");
                None
            }
            Some(Value::String(s)) => match uuid::Uuid::try_parse(s.trim()) {
                Ok(id) => {
                    let id = id.hyphenated().to_string();
                    if seen.insert(id.clone()) {
                        Some(id)
                    } else {
                        e.add(
                            format!("{base}/product_id"),
                            "appears in another line: order it once with the total quantity",
                        );
                        None
                    }
                }
                Err(_) => {
                    e.add(format!("{base}/product_id"), "must be a UUID");
                    None
                }
            },
            Some(_) => {
                e.add(format!("{base}/product_id"), "must be a string (a UUID)");
                None
            }
        };
        let quantity = match obj.get("quantity") {
            None | Some(Value::Null) => {
                e.add(format!("{base}/quantity"), "is required");
                None
            }
            Some(q) => match q.as_i64() {
                Some(n) if (1..=MAX_QUANTITY).contains(&n) => Some(n),
                _ => {
                    e.add(
                        format!("{base}/quantity"),
                        format!("must be an integer from 1 to {MAX_QUANTITY}"),
                    );
                    None
                }
            },
        };
        if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
            lines.push(LineRequest {
                product_id,
                quantity,
            });
        }
    }
    (e.0.len() == before).then_some(lines)
}

fn parse_address(e: &mut Errors, v: Option<&Value>) -> Option<Address> {
    const BASE: &str = "/shipping_address";
    let obj = e.object(v, BASE)?;
    let name = e.text(obj, "name", BASE, MAX_NAME);
    let line1 = e.text(obj, "line1", BASE, MAX_LINE);
    let line2 = match obj.get("line2") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => e
            .check_text(s, &format!("{BASE}/line2"), MAX_LINE, true)
            .map(|s| (!s.is_empty()).then_some(s)),
        Some(_) => {
            e.add(format!("{BASE}/line2"), "must be a string or null");
            None
        }
    };
    let city = e.text(obj, "city", BASE, MAX_CITY);
    let postal_code = e.text(obj, "postal_code", BASE, MAX_POSTAL_CODE);
    let country = match obj.get("country") {
        None | Some(Value::Null) => {
            e.add(format!("{BASE}/country"), "is required");
            None
        }
        Some(Value::String(s)) => {
            let code = s.trim().to_ascii_uppercase();
            if is_country_code(&code) {
                Some(code)
            } else {
                e.add(
                    format!("{BASE}/country"),
                    "must be an ISO 3166-1 alpha-2 country code, e.g. DE",
                );
                None
            }
        }
        Some(_) => {
            e.add(format!("{BASE}/country"), "must be a string");
            None
        }
    };
    Some(Address {
        name: name?,
        line1: line1?,
        line2: line2?,
        city: city?,
        postal_code: postal_code?,
        country: country?,
    })
}

fn parse_payment(e: &mut Errors, v: Option<&Value>) -> Option<String> {
    let obj = e.object(v, "/payment")?;
    let pointer = "/payment/card_token";
    match obj.get("card_token") {
        None | Some(Value::Null) => {
            e.add(pointer, "is required");
            None
        }
        Some(Value::String(s)) if s.is_empty() => {
            e.add(pointer, "must not be empty");
            None
        }
        Some(Value::String(s)) if s.chars().count() > MAX_CARD_TOKEN => {
            e.add(
                pointer,
                format!("must be at most {MAX_CARD_TOKEN} characters"),
            );
            None
        }
        Some(Value::String(s)) if !s.bytes().all(|b| (b'!'..=b'~').contains(&b)) => {
            e.add(pointer, "must be visible ASCII characters only");
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            e.add(pointer, "must be a string");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const P1: &str = "01900000-0000-7000-8000-000000000001";
    const P2: &str = "01900000-0000-7000-8000-000000000002";

    fn valid() -> Value {
        json!({
            "items": [{"product_id": P1, "quantity": 2}, {"product_id": P2, "quantity": 1}],
            "shipping_address": {"name": "Ada", "line1": "1 Main St", "line2": null,
                                 "city": "Berlin", "postal_code": "10115", "country": "DE"},
            "payment": {"card_token": "tok_visa"},
            "unknown": true
        })
    }

    fn pointers(body: Value) -> Vec<String> {
        PlaceOrder::parse(&body)
            .unwrap_err()
            .into_iter()
            .map(|e| e.pointer)
            .collect()
    }

    #[test]
    fn a_valid_body_becomes_a_command() {
        let cmd = PlaceOrder::parse(&valid()).unwrap();
        assert_eq!(cmd.lines.len(), 2);
        assert_eq!(cmd.lines[0].product_id, P1);
        assert_eq!(cmd.lines[0].quantity, 2);
        assert_eq!(cmd.address.country, "DE");
        assert_eq!(cmd.address.line2, None);
        assert_eq!(cmd.card_token, "tok_visa");
    }

    #[test]
    fn every_missing_part_is_reported() {
        assert_eq!(
            pointers(json!({})),
            ["/items", "/shipping_address", "/payment"]
        );
        assert_eq!(
            pointers(json!({"items": [{}], "shipping_address": {}, "payment": {}})),
            [
                "/items/0/product_id",
                "/items/0/quantity",
                "/shipping_address/name",
                "/shipping_address/line1",
                "/shipping_address/city",
                "/shipping_address/postal_code",
                "/shipping_address/country",
                "/payment/card_token"
            ]
        );
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let mut body = valid();
        body["items"] = json!([
            {"product_id": "nope", "quantity": 0},
            {"product_id": P1, "quantity": 101},
            {"product_id": 5, "quantity": 2.5},
            {"product_id": P1, "quantity": "1"},
            "x"
        ]);
        body["shipping_address"] = json!({"name": " ", "line1": "x".repeat(201), "line2": 3,
            "city": "a\u{7}b", "postal_code": "1".repeat(21), "country": "XX"});
        body["payment"] = json!({"card_token": "tok visa"});
        assert_eq!(
            pointers(body),
            [
                "/items/0/product_id",
                "/items/0/quantity",
                "/items/1/quantity",
                "/items/2/product_id",
                "/items/2/quantity",
                "/items/3/product_id",
                "/items/3/quantity",
                "/items/4",
                "/shipping_address/name",
                "/shipping_address/line1",
                "/shipping_address/line2",
                "/shipping_address/city",
                "/shipping_address/postal_code",
                "/shipping_address/country",
                "/payment/card_token"
            ]
        );
    }

    #[test]
    fn line_counts_are_bounded() {
        let mut body = valid();
        body["items"] = json!([]);
        assert_eq!(pointers(body.clone()), ["/items"]);
        let many: Vec<Value> = (0..51)
            .map(|i| json!({"product_id": format!("01900000-0000-7000-8000-{i:012}"), "quantity": 1}))
            .collect();
        body["items"] = Value::Array(many[..50].to_vec());
        assert!(PlaceOrder::parse(&body).is_ok());
        body["items"] = Value::Array(many);
        assert_eq!(pointers(body), ["/items"]);
    }

    #[test]
    fn card_tokens_are_bounded() {
        let mut body = valid();
        body["payment"]["card_token"] = json!("t".repeat(64));
        assert!(PlaceOrder::parse(&body).is_ok());
        for bad in [json!("t".repeat(65)), json!(""), json!(7), json!(null)] {
            body["payment"]["card_token"] = bad.clone();
            assert_eq!(pointers(body.clone()), ["/payment/card_token"], "{bad}");
        }
    }

    #[test]
    fn lower_case_countries_and_padded_text_are_normalised() {
        let mut body = valid();
        body["shipping_address"]["country"] = json!(" de ");
        body["shipping_address"]["name"] = json!("  Ada ");
        body["shipping_address"]["line2"] = json!("  ");
        let cmd = PlaceOrder::parse(&body).unwrap();
        assert_eq!(cmd.address.country, "DE");
        assert_eq!(cmd.address.name, "Ada");
        assert_eq!(cmd.address.line2, None);
    }

    fn price(sku: &str, minor: i64, currency: &str) -> CatalogPrice {
        CatalogPrice {
            sku: sku.into(),
            name: format!("{sku} name"),
            price: Money {
                amount_minor: minor,
                currency: currency.into(),
            },
        }
    }

    #[test]
    fn pricing_sums_line_totals_and_points_at_unknown_products() {
        let cmd = PlaceOrder::parse(&valid()).unwrap();
        let mut prices = HashMap::new();
        prices.insert(P1.to_owned(), price("A", 1299, "USD"));
        let err = cmd.price(&prices).unwrap_err();
        assert_eq!(err[0].pointer, "/items/1/product_id");
        prices.insert(P2.to_owned(), price("B", 500, "USD"));
        let (lines, total) = cmd.price(&prices).unwrap();
        assert_eq!(lines[0].line_total.amount_minor, 2598);
        assert_eq!(lines[1].sku, "B");
        assert_eq!(total.amount_minor, 3098);
        assert_eq!(total.currency, "USD");
        prices.insert(P2.to_owned(), price("B", 500, "EUR"));
        assert_eq!(
            cmd.price(&prices).unwrap_err()[0].pointer,
            "/items/1/product_id"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics(s in ".{0,200}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = PlaceOrder::parse(&v);
            }
            let _ = PlaceOrder::parse(&json!({"items": [{"product_id": s.clone(), "quantity": 1}],
                "shipping_address": {"name": s.clone(), "line1": s.clone(), "city": s.clone(),
                "postal_code": s.clone(), "country": s.clone()}, "payment": {"card_token": s}}));
        }
    }
}
