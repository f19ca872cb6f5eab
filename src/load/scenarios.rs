//! What each scenario sends. Every choice (scenario, user, products, quantities, waits) comes
//! from the arrival's own seeded generator, so a seed replays the same requests whatever the
//! timing; each step is due when the step before it answered.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{rngs::StdRng, seq::SliceRandom as _, Rng as _, SeedableRng as _};
use reqwest::Method;
use serde_json::json;

use super::{
    client::{json_str, login_body, Account, Answer, Client, Request},
    mix::{Mix, Scenario},
    record::{Item, Op},
    setup::{customer_email, encode_query, registration_body, Product, CUSTOMER_PASSWORD},
};

/// The quantity of every restock.
pub const RESTOCK_QUANTITY: u32 = 25;
/// The longest wait between a placement and its cancellation.
const MAX_CANCEL_WAIT_MS: u64 = 2500;

/// Everything the scenarios share.
pub struct World {
    pub client: Client,
    pub mix: Mix,
    pub seed: u64,
    /// A random id of this run, in the emails of customers registered during it.
    pub run_id: String,
    pub users: Vec<Account>,
    pub admin: Option<Account>,
    pub products: Vec<Product>,
    /// The categories of the products (each once).
    pub categories: Vec<String>,
    /// Words of the product names, for searches.
    pub words: Vec<String>,
}

/// The generator of arrival `i`: a function of the seed and `i` only.
pub fn arrival_rng(seed: u64, i: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix64(seed ^ splitmix64(i)))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl World {
    /// Runs arrival `i`, due at `due`; returns which scenario it was.
    pub async fn run(&self, i: u64, due: Instant) -> Scenario {
        let mut rng = arrival_rng(self.seed, i);
        let scenario = self.mix.pick(&mut rng);
        let user_index = rng.gen_range(0..self.users.len().max(1));
        let Some(user) = self.users.get(user_index) else {
            return scenario;
        };
        match scenario {
            Scenario::Browse => self.browse(user, &mut rng, due).await,
            Scenario::OrderVisa => {
                self.place(scenario, user, "tok_visa", "10115", &mut rng, due)
                    .await;
            }
            Scenario::OrderDeclined => {
                self.place(scenario, user, "tok_declined", "10115", &mut rng, due)
                    .await;
            }
            Scenario::OrderTimeout => {
                self.place(scenario, user, "tok_timeout", "10115", &mut rng, due)
                    .await;
            }
            Scenario::OrderShipFail => {
                self.place(scenario, user, "tok_visa", "00000", &mut rng, due)
                    .await;
            }
            Scenario::Cancel => self.cancel(user, &mut rng, due).await,
            Scenario::Orders => {
                let req = Request::new(
                    Op::ListOrders,
                    Method::GET,
                    "/api/v1/orders".into(),
                    Some(user),
                );
                self.client.execute(scenario, &req, due).await;
            }
            Scenario::Overview => {
                let req = Request::new(
                    Op::Overview,
                    Method::GET,
                    "/api/v1/me/overview".into(),
                    Some(user),
                );
                self.client.execute(scenario, &req, due).await;
            }
            Scenario::Register => self.register(i, due).await,
            Scenario::Restock => self.restock(&mut rng, due).await,
        }
        scenario
    }

    /// A list page (plain, a category or a search; sometimes the next page too), then one
    /// product from it.
    async fn browse(&self, user: &Account, rng: &mut StdRng, due: Instant) {
        let limit = rng.gen_range(5..=20);
        let filter = match rng.gen_range(0..3) {
            1 => self
                .categories
                .choose(rng)
                .map(|c| format!("&category={}", encode_query(c))),
            2 => self
                .words
                .choose(rng)
                .map(|w| format!("&q={}", encode_query(w))),
            _ => None,
        }
        .unwrap_or_default();
        let next_page = rng.gen_bool(0.3);
        let pick = rng.gen::<u64>();
        let base = format!("/api/v1/products?limit={limit}{filter}");
        let req = Request::new(Op::Browse, Method::GET, base.clone(), Some(user));
        let mut answer = self.client.execute(Scenario::Browse, &req, due).await;
        if next_page {
            if let Some(cursor) = answer
                .is_success()
                .then(|| json_str(&answer.body, "next_cursor"))
                .flatten()
            {
                let path = format!("{base}&cursor={}", encode_query(&cursor));
                let req = Request::new(Op::Browse, Method::GET, path, Some(user));
                answer = self.client.execute(Scenario::Browse, &req, answer.at).await;
            }
        }
        let listed = listed_ids(&answer);
        let id = if listed.is_empty() {
            self.products
                .get(pick as usize % self.products.len().max(1))
                .map(|p| p.id.clone())
        } else {
            listed.get(pick as usize % listed.len()).cloned()
        };
        if let Some(id) = id {
            let path = format!("/api/v1/products/{}", encode_query(&id));
            let req = Request::new(Op::GetProduct, Method::GET, path, Some(user));
            self.client.execute(Scenario::Browse, &req, answer.at).await;
        }
    }

    /// One order of 1–3 products, 1–2 of each, with a fresh `Idempotency-Key`.
    async fn place(
        &self,
        scenario: Scenario,
        user: &Account,
        card: &str,
        postal_code: &str,
        rng: &mut StdRng,
        due: Instant,
    ) -> Answer {
        let lines = rng.gen_range(1..=3usize).min(self.products.len());
        let items: Vec<Item> = self
            .products
            .choose_multiple(rng, lines)
            .map(|p| Item {
                product_id: p.id.clone(),
                sku: p.sku.clone(),
                quantity: rng.gen_range(1..=2),
            })
            .collect();
        // Random, not seeded: a key must be new for every run, also with the same seed.
        let key = uuid::Uuid::new_v4().to_string();
        let mut req = Request::new(
            Op::PlaceOrder,
            Method::POST,
            "/api/v1/orders".into(),
            Some(user),
        );
        req.body = Some(order_body(&items, card, postal_code));
        req.idempotency_key = Some(key.clone());
        req.details.key = Some(key);
        req.details.token = Some(card.to_owned());
        req.details.postal_code = Some(postal_code.to_owned());
        req.details.items = Some(items);
        self.client.execute(scenario, &req, due).await
    }

    /// A `tok_visa` order, then its cancellation 0–2.5 s after the placement answered.
    async fn cancel(&self, user: &Account, rng: &mut StdRng, due: Instant) {
        let wait = Duration::from_millis(rng.gen_range(0..=MAX_CANCEL_WAIT_MS));
        let placed = self
            .place(Scenario::Cancel, user, "tok_visa", "10115", rng, due)
            .await;
        let Some(order_id) = placed
            .is_success()
            .then(|| json_str(&placed.body, "id"))
            .flatten()
        else {
            return;
        };
        let due = placed.at + wait;
        tokio::time::sleep_until(due.into()).await;
        let path = format!("/api/v1/orders/{}/cancel", encode_query(&order_id));
        let mut req = Request::new(Op::Cancel, Method::POST, path, Some(user));
        req.details.order_id = Some(order_id);
        self.client.execute(Scenario::Cancel, &req, due).await;
    }

    /// A new customer registers and logs in, anonymously.
    async fn register(&self, i: u64, due: Instant) {
        let email = customer_email(self.seed, &self.run_id, &format!("r{i}"));
        let mut req = Request::new(Op::Register, Method::POST, "/api/v1/users".into(), None);
        req.body = Some(registration_body(&email, &format!("Load Registrant {i}")));
        let registered = self.client.execute(Scenario::Register, &req, due).await;
        if !registered.is_success() {
            return;
        }
        let mut req = Request::new(Op::Token, Method::POST, "/api/v1/auth/token".into(), None);
        req.body = Some(login_body(&email, CUSTOMER_PASSWORD));
        req.details.user = json_str(&registered.body, "id");
        // The token is not used further: the scenario is the sign-up itself.
        self.client
            .execute(Scenario::Register, &req, registered.at)
            .await;
    }

    /// The admin adds 25 units of a random product.
    async fn restock(&self, rng: &mut StdRng, due: Instant) {
        let (Some(admin), Some(product)) = (&self.admin, self.products.choose(rng)) else {
            return;
        };
        let path = format!("/api/v1/inventory/{}/restock", encode_query(&product.sku));
        let mut req = Request::new(Op::Restock, Method::POST, path, Some(admin));
        req.body = Some(Bytes::from(
            json!({"quantity": RESTOCK_QUANTITY}).to_string(),
        ));
        req.details.sku = Some(product.sku.clone());
        req.details.quantity = Some(RESTOCK_QUANTITY);
        self.client.execute(Scenario::Restock, &req, due).await;
    }
}

/// The request body of an order; serialized once, so every retry sends the same bytes.
pub fn order_body(items: &[Item], card: &str, postal_code: &str) -> Bytes {
    let lines: Vec<serde_json::Value> = items
        .iter()
        .map(|i| json!({"product_id": i.product_id, "quantity": i.quantity}))
        .collect();
    Bytes::from(
        json!({
            "items": lines,
            "shipping_address": {
                "name": "Load Customer", "line1": "1 Load Street", "line2": null,
                "city": "Berlin", "postal_code": postal_code, "country": "DE"
            },
            "payment": {"card_token": card}
        })
        .to_string(),
    )
}

/// The product ids of a list answer.
fn listed_ids(answer: &Answer) -> Vec<String> {
    if !answer.is_success() {
        return Vec::new();
    }
    serde_json::from_slice::<super::setup::ProductPage>(&answer.body)
        .map(|page| page.items.into_iter().map(|p| p.id).collect())
        .unwrap_or_default()
}

/// The categories (each once, sorted) and the search words (each once, sorted; only
/// alphanumeric words of 3+ characters) of some products.
pub fn vocabulary(products: &[Product]) -> (Vec<String>, Vec<String>) {
    let mut categories: Vec<String> = products
        .iter()
        .map(|p| p.category.clone())
        .filter(|c| !c.is_empty())
        .collect();
    categories.sort();
    categories.dedup();
    let mut words: Vec<String> = products
        .iter()
        .flat_map(|p| p.name.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    (categories, words)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rand::RngCore as _;

    use super::*;

    #[test]
    fn an_order_body_is_a_valid_placement() {
        let items = vec![
            Item {
                product_id: "p-1".into(),
                sku: "A".into(),
                quantity: 2,
            },
            Item {
                product_id: "p-2".into(),
                sku: "B".into(),
                quantity: 1,
            },
        ];
        let body: serde_json::Value =
            serde_json::from_slice(&order_body(&items, "tok_declined", "00000")).unwrap();
        assert_eq!(
            body["items"][0],
            json!({"product_id": "p-1", "quantity": 2})
        );
        assert_eq!(body["items"][1]["product_id"], "p-2");
        assert_eq!(body["payment"]["card_token"], "tok_declined");
        assert_eq!(body["shipping_address"]["postal_code"], "00000");
        assert_eq!(body["shipping_address"]["country"], "DE");
        assert!(body["items"][0].get("sku").is_none());
        assert_eq!(
            order_body(&items, "tok_visa", "10115"),
            order_body(&items, "tok_visa", "10115"),
            "the same bytes every time"
        );
    }

    #[test]
    fn an_arrival_draws_the_same_choices_for_the_same_seed() {
        let a: Vec<u64> = (0..5).map(|i| arrival_rng(1, i).next_u64()).collect();
        let b: Vec<u64> = (0..5).map(|i| arrival_rng(1, i).next_u64()).collect();
        let c: Vec<u64> = (0..5).map(|i| arrival_rng(2, i).next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a[0], a[1]);
    }

    #[test]
    fn the_vocabulary_comes_from_categories_and_names() {
        let product = |name: &str, category: &str| Product {
            id: "x".into(),
            sku: "x".into(),
            name: name.into(),
            category: category.into(),
        };
        let (categories, words) = vocabulary(&[
            product("Coffee Grinder", "kitchen"),
            product("French press (1 l)", "kitchen"),
            product("Desk lamp", "home"),
        ]);
        assert_eq!(categories, ["home", "kitchen"]);
        assert_eq!(
            words,
            ["coffee", "desk", "french", "grinder", "lamp", "press"]
        );
    }
}
