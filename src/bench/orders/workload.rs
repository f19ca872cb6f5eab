//! The two requests the orders bench sends: placing an order and reading a product.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use rand::Rng as _;
use serde::Deserialize;
use serde_json::json;

use super::load::{Operation, Outcome};

/// The `Prefer: wait` of every placement: the longest the order service honours.
pub const PREFER_WAIT_SECS: u64 = 30;
/// The client's own limit per placement: above the gateway's 35 s for the order route.
const PLACE_TIMEOUT: Duration = Duration::from_secs(40);
/// The client's own limit per product read.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static PREFER: HeaderName = HeaderName::from_static("prefer");

/// A product the bench orders and reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub sku: String,
}

/// `POST /api/v1/orders`: one line of a random product, quantity 1, `tok_visa`, a fresh
/// `Idempotency-Key`, `Prefer: wait=30`; ok when the answer is 201 with status `confirmed`.
pub struct PlaceOrder {
    /// `Bearer …` per client (client `i` uses `i % len`).
    authorizations: Arc<[HeaderValue]>,
    /// The request body for each product (only the product differs).
    bodies: Vec<Bytes>,
    prefer: HeaderValue,
}

impl PlaceOrder {
    pub fn new(
        authorizations: Arc<[HeaderValue]>,
        products: &[Product],
    ) -> anyhow::Result<PlaceOrder> {
        Ok(PlaceOrder {
            authorizations,
            bodies: products.iter().map(|p| order_body(&p.id)).collect(),
            prefer: HeaderValue::try_from(format!("wait={PREFER_WAIT_SECS}"))?,
        })
    }
}

/// The body of an order for one unit of `product_id`, paid with `tok_visa`.
pub fn order_body(product_id: &str) -> Bytes {
    Bytes::from(
        json!({
            "items": [{"product_id": product_id, "quantity": 1}],
            "shipping_address": {
                "name": "Bench Customer", "line1": "1 Load Street", "line2": null,
                "city": "Berlin", "postal_code": "10115", "country": "DE"
            },
            "payment": {"card_token": "tok_visa"}
        })
        .to_string(),
    )
}

/// The part of an order answer the bench looks at.
#[derive(Debug, Deserialize)]
struct OrderStatus {
    status: String,
    #[serde(default)]
    status_reason: Option<String>,
}

/// How a placement's answer is counted: `confirmed` is ok; another status is named with its
/// reason (`201 rejected (out_of_stock)`); any other answer by its status code.
pub fn judge_placement(status: StatusCode, body: &[u8]) -> Outcome {
    if status != StatusCode::CREATED {
        return Outcome::Other(format!("HTTP {}", status.as_u16()));
    }
    match serde_json::from_slice::<OrderStatus>(body) {
        Ok(o) if o.status == "confirmed" => Outcome::Ok,
        Ok(o) => Outcome::Other(match o.status_reason {
            Some(reason) => format!("201 {} ({reason})", o.status),
            None => format!("201 {}", o.status),
        }),
        Err(_) => Outcome::Other("201 unreadable body".to_owned()),
    }
}

impl Operation for PlaceOrder {
    fn request(
        &self,
        client: usize,
        _n: u64,
        host: &HeaderValue,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let product = rand::thread_rng().gen_range(0..self.bodies.len().max(1));
        let body = self.bodies.get(product).cloned().unwrap_or_default();
        let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/orders")
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json")
            .header(&IDEMPOTENCY_KEY, key)
            .header(&PREFER, &self.prefer);
        if let Some(auth) = pick(&self.authorizations, client) {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        Ok(builder.body(Full::new(body))?)
    }

    fn judge(&self, status: StatusCode, body: &[u8]) -> Outcome {
        judge_placement(status, body)
    }

    fn timeout(&self) -> Duration {
        PLACE_TIMEOUT
    }
}

/// `GET /api/v1/products/{id}` of a random product with the client's token: a token means
/// the gateway's cache (anonymous requests only) is bypassed, so every read reaches the
/// catalog, as every placement reaches the order service. Ok when 200.
pub struct ReadProduct {
    authorizations: Arc<[HeaderValue]>,
    paths: Vec<String>,
}

impl ReadProduct {
    pub fn new(authorizations: Arc<[HeaderValue]>, products: &[Product]) -> ReadProduct {
        ReadProduct {
            authorizations,
            paths: products
                .iter()
                .map(|p| format!("/api/v1/products/{}", p.id))
                .collect(),
        }
    }
}

impl Operation for ReadProduct {
    fn request(
        &self,
        client: usize,
        _n: u64,
        host: &HeaderValue,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let i = rand::thread_rng().gen_range(0..self.paths.len().max(1));
        let path = self.paths.get(i).map_or("/api/v1/products", String::as_str);
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::HOST, host);
        if let Some(auth) = pick(&self.authorizations, client) {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        Ok(builder.body(Full::new(Bytes::new()))?)
    }

    fn judge(&self, status: StatusCode, _body: &[u8]) -> Outcome {
        if status == StatusCode::OK {
            Outcome::Ok
        } else {
            Outcome::Other(format!("HTTP {}", status.as_u16()))
        }
    }

    fn timeout(&self) -> Duration {
        READ_TIMEOUT
    }
}

fn pick(values: &[HeaderValue], client: usize) -> Option<&HeaderValue> {
    (!values.is_empty()).then(|| &values[client % values.len()])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn products() -> Vec<Product> {
        vec![
            Product {
                id: "0190f3c2-0000-7000-8000-000000000001".into(),
                sku: "A-1".into(),
            },
            Product {
                id: "0190f3c2-0000-7000-8000-000000000002".into(),
                sku: "B-2".into(),
            },
        ]
    }

    fn tokens() -> Arc<[HeaderValue]> {
        vec![
            HeaderValue::from_static("Bearer a"),
            HeaderValue::from_static("Bearer b"),
        ]
        .into()
    }

    #[test]
    fn a_placement_is_a_valid_order_for_one_unit_with_its_own_key() {
        let op = PlaceOrder::new(tokens(), &products()).unwrap();
        let host = HeaderValue::from_static("127.0.0.1:1");
        let a = op.request(1, 0, &host).unwrap();
        let b = op.request(1, 1, &host).unwrap();
        assert_eq!(a.method(), Method::POST);
        assert_eq!(a.uri(), "/api/v1/orders");
        assert_eq!(a.headers()[header::AUTHORIZATION], "Bearer b");
        assert_eq!(a.headers()["prefer"], "wait=30");
        assert_eq!(a.headers()[header::CONTENT_TYPE], "application/json");
        assert_ne!(
            a.headers()["idempotency-key"],
            b.headers()["idempotency-key"]
        );
        let key = a.headers()["idempotency-key"].to_str().unwrap();
        assert!((1..=255).contains(&key.len()));

        let body: serde_json::Value = serde_json::from_slice(&order_body("p-1")).unwrap();
        assert_eq!(body["items"][0]["product_id"], "p-1");
        assert_eq!(body["items"][0]["quantity"], 1);
        assert_eq!(body["payment"]["card_token"], "tok_visa");
        assert_eq!(body["shipping_address"]["country"], "DE");
        assert_ne!(body["shipping_address"]["postal_code"], "00000");
    }

    #[test]
    fn only_a_confirmed_order_counts() {
        assert_eq!(
            judge_placement(
                StatusCode::CREATED,
                br#"{"id":"x","status":"confirmed","status_reason":null}"#
            ),
            Outcome::Ok
        );
        assert_eq!(
            judge_placement(StatusCode::CREATED, br#"{"status":"pending"}"#),
            Outcome::Other("201 pending".into())
        );
        assert_eq!(
            judge_placement(
                StatusCode::CREATED,
                br#"{"status":"rejected","status_reason":"out_of_stock"}"#
            ),
            Outcome::Other("201 rejected (out_of_stock)".into())
        );
        assert_eq!(
            judge_placement(StatusCode::SERVICE_UNAVAILABLE, b"{}"),
            Outcome::Other("HTTP 503".into())
        );
        assert_eq!(
            judge_placement(StatusCode::CREATED, b"<html>"),
            Outcome::Other("201 unreadable body".into())
        );
    }

    #[test]
    fn a_read_asks_for_one_of_the_products_with_the_clients_token() {
        let op = ReadProduct::new(tokens(), &products());
        let req = op
            .request(0, 0, &HeaderValue::from_static("127.0.0.1:1"))
            .unwrap();
        assert_eq!(req.method(), Method::GET);
        assert!(req
            .uri()
            .path()
            .starts_with("/api/v1/products/0190f3c2-0000-7000-8000-00000000000"));
        assert_eq!(req.headers()[header::AUTHORIZATION], "Bearer a");
        assert_eq!(op.judge(StatusCode::OK, b""), Outcome::Ok);
        assert_eq!(
            op.judge(StatusCode::TOO_MANY_REQUESTS, b""),
            Outcome::Other("HTTP 429".into())
        );
    }
}
