//! API.md's Catalog section through the gateway.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::support::{assert_problem, pointers, Shop};

fn product(sku: &str, category: &str) -> Value {
    json!({"sku": sku, "name": format!("Thing {sku}"), "description": "A thing.", "category": category,
           "price": {"amount_minor": 1299, "currency": "USD"}})
}

async fn catalog_contract(shop: &Shop) {
    let c = &shop.client;
    let admin = shop.admin_token().await;
    let (_, customer, _) = shop.customer().await;
    let category = format!("cat-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let prefix = uuid::Uuid::new_v4().simple().to_string()[..6].to_uppercase();

    // The demo catalog is there.
    let list: Value = c
        .get(shop.url("/api/v1/products?limit=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list["items"].as_array().unwrap().len() >= 20,
        "demo catalog has at least 20 products"
    );

    // Admin create 201 + Location; customer 403; anonymous 401.
    let res = c
        .post(shop.url("/api/v1/products"))
        .bearer_auth(&admin)
        .json(&product(&format!("{prefix}-0"), &category))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let loc = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    assert_eq!(
        loc,
        format!("/api/v1/products/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(
        created["price"],
        json!({"amount_minor": 1299, "currency": "USD"})
    );
    let res = c
        .post(shop.url("/api/v1/products"))
        .bearer_auth(&customer)
        .json(&product("X-1", &category))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = c
        .post(shop.url("/api/v1/products"))
        .json(&product("X-1", &category))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;

    // Duplicate SKU 409; invalid fields 422 with pointers.
    let res = c
        .post(shop.url("/api/v1/products"))
        .bearer_auth(&admin)
        .json(&product(&format!("{prefix}-0"), &category))
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "conflict").await;
    let res = c
        .post(shop.url("/api/v1/products"))
        .bearer_auth(&admin)
        .json(&json!({"sku": "a", "name": "", "description": "d", "category": "Bad Category", "price": {"amount_minor": -1, "currency": "XXX"}}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422, "validation").await;
    assert_eq!(
        pointers(&body),
        [
            "/category",
            "/name",
            "/price/amount_minor",
            "/price/currency",
            "/sku"
        ]
    );

    // Get: 200; unknown → 404; not a UUID → 404.
    let id = created["id"].as_str().unwrap();
    let res = c
        .get(shop.url(&format!("/api/v1/products/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = c
        .get(shop.url("/api/v1/products/0190d9f4-0000-7000-8000-000000000000"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;
    let res = c
        .get(shop.url("/api/v1/products/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;

    // PATCH as admin.
    let res = c
        .patch(shop.url(&format!("/api/v1/products/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"price": {"amount_minor": 999, "currency": "USD"}, "sku": "IGNORED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["price"]["amount_minor"], 999);
    assert_eq!(patched["sku"], created["sku"]);

    // Bad query parameters → 400.
    for q in ["limit=0", "limit=101", "limit=abc", "cursor=not-a-cursor"] {
        let res = c
            .get(shop.url(&format!("/api/v1/products?{q}")))
            .send()
            .await
            .unwrap();
        assert_problem(res, 400, "malformed-request").await;
    }

    // Pagination: 23 products in a fresh category, pages of 5, no duplicates, none missing.
    for i in 1..23 {
        let res = c
            .post(shop.url("/api/v1/products"))
            .bearer_auth(&admin)
            .json(&product(&format!("{prefix}-{i}"), &category))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = shop.url(&format!("/api/v1/products?category={category}&limit=5"));
        if let Some(cur) = &cursor {
            url.push_str(&format!("&cursor={cur}"));
        }
        let page: Value = c.get(url).send().await.unwrap().json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            assert!(
                seen.insert(item["id"].as_str().unwrap().to_owned()),
                "duplicate {item}"
            );
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => {
                // A tampered cursor is refused.
                let mut bad = next.to_owned();
                let last = bad.pop().unwrap();
                bad.push(if last == 'A' { 'B' } else { 'A' });
                let res = c
                    .get(shop.url(&format!(
                        "/api/v1/products?category={category}&limit=5&cursor={bad}"
                    )))
                    .send()
                    .await
                    .unwrap();
                assert_problem(res, 400, "malformed-request").await;
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 23);
    assert_eq!(pages, 5);
}

#[tokio::test]
async fn catalog_serves_its_contract_through_the_gateway_on_sqlite() {
    let shop = Shop::start().await;
    catalog_contract(&shop).await;
}

#[tokio::test]
async fn catalog_serves_its_contract_through_the_gateway_on_postgres() {
    let Some(shop) = Shop::on_postgres().await else {
        return;
    };
    catalog_contract(&shop).await;
}
