//! Lists: paging, filters and their query parameters.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{both, problem, product, TestApp};

/// Every page of `path` (which must already carry a `?`), following `next_cursor`; calls
/// `between` after each page.
async fn all_pages(
    app: &TestApp,
    path: &str,
    mut between: impl AsyncFnMut(usize),
) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut next = app.get_json(path).await;
    loop {
        pages.push(next["items"].as_array().unwrap().clone());
        between(pages.len()).await;
        let Some(cursor) = next["next_cursor"].as_str() else {
            break;
        };
        assert!(pages.len() < 100, "paging does not end");
        let url = format!("{path}&cursor={}", urlencode(cursor));
        next = app.get_json(&url).await;
    }
    pages
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

both!(
    paging_lists_every_product_once_even_while_products_are_created,
    |app| {
        let mut created = Vec::new();
        for i in 0..35 {
            created.push(
                app.create_ok(&product(
                    &format!("PG-{i:03}"),
                    &format!("Product {i}"),
                    "misc",
                ))
                .await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let mut extra = 0;
        let pages = all_pages(&app, "/api/v1/products?limit=10", async |_| {
            // New products between pages must not shift anything into a later page.
            app.create_ok(&product(&format!("NEW-{extra:03}"), "Newcomer", "misc"))
                .await;
            extra += 1;
        })
        .await;
        assert_eq!(pages.len(), 4, "35 products in pages of 10");
        assert!(pages[..3].iter().all(|p| p.len() == 10));
        let seen: Vec<String> = pages.iter().flat_map(|p| ids(p)).collect();
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no product twice");
        assert_eq!(
            seen.len(),
            35,
            "nothing created during paging shows up in later pages"
        );
        let mut newest_first = created.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first, "newest first, nothing missing");
    }
);

both!(
    the_last_page_has_no_cursor_and_an_empty_catalog_is_one_empty_page,
    |app| {
        assert_eq!(
            app.get_json("/api/v1/products").await,
            json!({"items": [], "next_cursor": null})
        );
        for i in 0..3 {
            app.create_ok(&product(&format!("LP-{i}"), "Thing", "misc"))
                .await;
        }
        let page = app.get_json("/api/v1/products?limit=3").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 3);
        assert_eq!(page["next_cursor"], Value::Null);
        let page = app.get_json("/api/v1/products").await;
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            3,
            "the default limit is 20"
        );
    }
);

both!(a_bad_limit_is_a_400, |app| {
    for limit in ["0", "101", "abc", "-1", "", "1.5", "99999999999999999999"] {
        let body = problem(
            app.get(&format!("/api/v1/products?limit={limit}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            body["type"], "urn:bazaar:problem:malformed-request",
            "{limit}"
        );
    }
    assert_eq!(
        app.get("/api/v1/products?limit=1").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/products?limit=100").await.status(),
        StatusCode::OK
    );
});

both!(a_tampered_foreign_or_misused_cursor_is_a_400, |app| {
    for i in 0..3 {
        app.create_ok(&product(&format!("CUR-{i}"), "Thing", "misc"))
            .await;
    }
    let page = app.get_json("/api/v1/products?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&format!("/api/v1/products?limit=1&cursor={cursor}"))
            .await
            .status(),
        StatusCode::OK
    );

    let mut tampered = Vec::new();
    for i in [
        0,
        cursor.len() / 2,
        cursor.find('.').unwrap() + 1,
        cursor.len() - 1,
    ] {
        let mut bytes = cursor.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        tampered.push(String::from_utf8(bytes).unwrap());
    }
    tampered.extend([
        "garbage".to_owned(),
        format!("{cursor}x"),
        cursor.replace('.', ""),
        "%00".to_owned(),
    ]);
    for bad in &tampered {
        let path = format!("/api/v1/products?limit=1&cursor={}", urlencode(bad));
        problem(app.get(&path).await, StatusCode::BAD_REQUEST).await;
    }
    // A genuine cursor, replayed with other filters.
    for other in ["&q=thing", "&category=misc"] {
        let path = format!(
            "/api/v1/products?limit=1&cursor={}{other}",
            urlencode(&cursor)
        );
        problem(app.get(&path).await, StatusCode::BAD_REQUEST).await;
    }
});

both!(cursors_survive_a_restart, |app| {
    for i in 0..3 {
        app.create_ok(&product(&format!("RS-{i}"), "Thing", "misc"))
            .await;
    }
    let page = app.get_json("/api/v1/products?limit=1").await;
    let cursor = urlencode(page["next_cursor"].as_str().unwrap());
    let restarted = TestApp::start(
        app.db.clone(),
        bazaar_auth::SigningKey::generate().unwrap(),
        false,
    )
    .await;
    let next = restarted
        .get_json(&format!("/api/v1/products?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(next["items"][0]["sku"], "RS-1");
});

both!(
    q_matches_name_or_description_case_insensitively_and_literally,
    |app| {
        let cotton = app.create_ok(&json!({"sku": "Q-1", "name": "100% Cotton Tee", "description": "Soft.", "category": "apparel",
        "price": {"amount_minor": 1500, "currency": "USD"}})).await;
        app.create_ok(&json!({"sku": "Q-2", "name": "1000 Cotton Buds", "description": "Cotton_buds in a box.", "category": "home",
        "price": {"amount_minor": 300, "currency": "USD"}})).await;
        let moka = app.create_ok(&json!({"sku": "Q-3", "name": "Stovetop Espresso Maker", "description": "A classic MOKA pot.",
        "category": "coffee", "price": {"amount_minor": 3999, "currency": "USD"}})).await;
        app.create_ok(
            &json!({"sku": "Q-4", "name": "Back\\slash Mug", "description": "", "category": "home",
        "price": {"amount_minor": 900, "currency": "USD"}}),
        )
        .await;

        let search = async |q: &str| -> Vec<String> {
            let page = app
                .get_json(&format!("/api/v1/products?q={}", urlencode(q)))
                .await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["sku"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(search("100%").await, ["Q-1"], "% is literal");
        assert_eq!(search("0%").await, ["Q-1"]);
        assert_eq!(search("%").await, ["Q-1"]);
        assert_eq!(
            search("n_b").await,
            ["Q-2"],
            "_ is literal: only 'cotton_buds' matches"
        );
        assert_eq!(search("_").await, ["Q-2"]);
        assert_eq!(search("\\").await, ["Q-4"]);
        assert_eq!(search("k\\s").await, ["Q-4"]);
        assert_eq!(
            search("moka").await,
            ["Q-3"],
            "matches the description, case-insensitively"
        );
        assert_eq!(search("ESPRESSO").await, ["Q-3"]);
        assert_eq!(
            search("  cotton ").await,
            ["Q-2", "Q-1"],
            "trimmed, newest first"
        );
        assert!(search("nothing like this").await.is_empty());
        assert_eq!(search("").await.len(), 4, "an empty q filters nothing");
        let _ = (cotton, moka);

        problem(
            app.get(&format!("/api/v1/products?q={}", "x".repeat(101)))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            app.get(&format!("/api/v1/products?q={}", "x".repeat(100)))
                .await
                .status(),
            StatusCode::OK
        );
        problem(
            app.get("/api/v1/products?q=a%00b").await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
);

both!(
    category_filters_exactly_and_pages_within_the_filter,
    |app| {
        for i in 0..5 {
            app.create_ok(&product(&format!("CA-{i}"), "Book", "books"))
                .await;
            app.create_ok(&product(&format!("CB-{i}"), "Book end", "books-and-more"))
                .await;
        }
        let pages = all_pages(
            &app,
            "/api/v1/products?category=books&limit=2",
            async |_| {},
        )
        .await;
        let skus: Vec<String> = pages
            .iter()
            .flatten()
            .map(|p| p["sku"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(skus, ["CA-4", "CA-3", "CA-2", "CA-1", "CA-0"]);
        let page = app.get_json("/api/v1/products?category=Books&q=end").await;
        assert!(page["items"].as_array().unwrap().is_empty());
        let page = app
            .get_json("/api/v1/products?category=books-and-more&q=END")
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 5);
        problem(
            app.get("/api/v1/products?category=no%20such!").await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        let page = app.get_json("/api/v1/products?category=toys").await;
        assert!(page["items"].as_array().unwrap().is_empty());

        // Paging with both filters keeps them.
        let pages = all_pages(
            &app,
            "/api/v1/products?category=books-and-more&q=book&limit=2",
            async |_| {},
        )
        .await;
        assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), 5);
    }
);
