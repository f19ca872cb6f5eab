//! `GET /admin/state`: the product count and the bus's tables, for the consistency checker.

use bazaar_catalog::http::CatalogState;
use reqwest::StatusCode;

use crate::helpers::{both, product};

both!(
    the_state_counts_products_and_lists_the_subscription,
    |app| {
        app.create_ok(&product("STA-1", "One", "misc")).await;
        app.create_ok(&product("STA-2", "Two", "misc")).await;

        let get = |token: String| {
            app.client
                .get(app.url("/admin/state"))
                .bearer_auth(token)
                .send()
        };
        let res = get(app.admin_token()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let state: CatalogState = res.json().await.unwrap();
        assert_eq!(state.service, "catalog");
        assert_eq!(state.products, 2);
        let messaging = state.messaging.unwrap();
        // Two product_created events, relayed or not yet.
        assert_eq!(messaging.dead_letters, 0);
        let subs: Vec<&str> = messaging
            .subscriptions
            .iter()
            .map(|s| s.subscription.as_str())
            .collect();
        assert_eq!(subs, ["catalog.stock_levels"]);

        let res = get(app.customer_token()).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = app.get("/admin/state").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
);
