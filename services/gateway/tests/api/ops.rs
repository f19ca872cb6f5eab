use serde_json::Value;

use crate::{helpers::assert_problem, shop::Shop};

const EVENT_SERVICES: &[&str] = &[
    "identity",
    "catalog",
    "inventory",
    "payment",
    "order",
    "shipping",
    "notification",
];

async fn echo(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "expected a service's echo");
    res.json().await.unwrap()
}

#[tokio::test]
async fn dead_letters_go_to_the_named_service_with_the_query() {
    let shop = Shop::spawn().await;
    let admin = shop.admin();
    for service in EVENT_SERVICES {
        let query = format!("service={service}&status=dead&limit=5&cursor=abc");
        let seen = echo(
            shop.get(&format!("/api/v1/admin/dead-letters?{query}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(seen["served_by"], *service);
        assert_eq!(seen["method"], "GET");
        assert_eq!(seen["path"], "/admin/dead-letters");
        assert_eq!(seen["query"], query);
        // The service checks the admin role itself.
        assert_eq!(seen["authorization"], format!("Bearer {admin}"));
        assert_eq!(shop.hits(service), 1, "{service}");
    }
}

#[tokio::test]
async fn dead_letters_are_for_admins_only() {
    let shop = Shop::spawn().await;
    let path = "/api/v1/admin/dead-letters?service=order";
    let res = shop.get(path).send().await.unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let res = shop
        .get(path)
        .bearer_auth(shop.customer())
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = shop
        .post("/api/v1/admin/dead-letters/order/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/redrive")
        .bearer_auth(shop.customer())
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    assert_eq!(shop.total_hits(), 0);
}

#[tokio::test]
async fn dead_letters_need_a_known_service() {
    let shop = Shop::spawn().await;
    let admin = shop.admin();
    for (path, status, slug) in [
        ("/api/v1/admin/dead-letters", 400, "malformed-request"),
        (
            "/api/v1/admin/dead-letters?status=dead",
            400,
            "malformed-request",
        ),
        (
            "/api/v1/admin/dead-letters?service=",
            400,
            "malformed-request",
        ),
        ("/api/v1/admin/dead-letters?service=psp", 404, "not-found"),
        (
            "/api/v1/admin/dead-letters?service=registry",
            404,
            "not-found",
        ),
        ("/api/v1/admin/dead-letters?service=ORDER", 404, "not-found"),
        ("/api/v1/admin/breakers", 400, "malformed-request"),
        ("/api/v1/admin/breakers?service=psp", 404, "not-found"),
    ] {
        let res = shop.get(path).bearer_auth(&admin).send().await.unwrap();
        let body = assert_problem(res, status, slug).await;
        assert!(body.get("errors").is_none(), "{path}: {body}");
    }
    let res = shop
        .post("/api/v1/admin/dead-letters/psp/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/redrive")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;
    assert_eq!(shop.total_hits(), 0);
}

#[tokio::test]
async fn a_redrive_is_forwarded_to_the_service_in_its_path() {
    let shop = Shop::spawn().await;
    let admin = shop.admin();
    let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let seen = echo(
        shop.post(&format!("/api/v1/admin/dead-letters/payment/{id}/redrive"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen["served_by"], "payment");
    assert_eq!(seen["method"], "POST");
    assert_eq!(
        seen["path"],
        format!("/admin/dead-letters/payment/{id}/redrive")
    );
    assert_eq!(seen["authorization"], format!("Bearer {admin}"));

    // Listing and redriving each have their method.
    let res = shop
        .get(&format!("/api/v1/admin/dead-letters/payment/{id}/redrive"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "POST");
    assert_problem(res, 405, "method-not-allowed").await;
    let res = shop
        .post("/api/v1/admin/dead-letters?service=payment")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_problem(res, 405, "method-not-allowed").await;
    assert_eq!(shop.hits("payment"), 1);
}

#[tokio::test]
async fn breakers_go_to_the_named_service() {
    let shop = Shop::spawn().await;
    let seen = echo(
        shop.get("/api/v1/admin/breakers?service=order")
            .bearer_auth(shop.admin())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen["served_by"], "order");
    assert_eq!(seen["path"], "/admin/breakers");
    let res = shop
        .get("/api/v1/admin/breakers?service=order")
        .bearer_auth(shop.customer())
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
}

#[tokio::test]
async fn the_default_routes_apply_the_contracts_auth_and_paths() {
    let shop = Shop::spawn().await;
    let (admin, customer) = (shop.admin(), shop.customer());
    // (public path, service, forwarded path)
    let admin_only = [
        (
            "/api/v1/inventory/SKU-1",
            "inventory",
            "/api/v1/inventory/SKU-1",
        ),
        ("/api/v1/admin/sagas?status=stuck", "order", "/admin/sagas"),
        (
            "/api/v1/admin/payments?order_id=1",
            "payment",
            "/api/v1/admin/payments",
        ),
        (
            "/api/v1/admin/shipments",
            "shipping",
            "/api/v1/admin/shipments",
        ),
    ];
    for (path, service, upstream) in admin_only {
        let res = shop.get(path).send().await.unwrap();
        assert_problem(res, 401, "unauthorized").await;
        let res = shop.get(path).bearer_auth(&customer).send().await.unwrap();
        assert_problem(res, 403, "forbidden").await;
        assert_eq!(shop.hits(service), 0, "{path} reached {service}");
        let seen = echo(shop.get(path).bearer_auth(&admin).send().await.unwrap()).await;
        assert_eq!(seen["served_by"], service, "{path}");
        assert_eq!(seen["path"], upstream, "{path}");
        assert_eq!(shop.hits(service), 1, "{path}");
    }
    let signed_in = [
        ("/api/v1/orders/order-1", "order"),
        ("/api/v1/me/notifications/n-1", "notification"),
    ];
    for (path, service) in signed_in {
        let res = shop.get(path).send().await.unwrap();
        assert_problem(res, 401, "unauthorized").await;
        let seen = echo(shop.get(path).bearer_auth(&customer).send().await.unwrap()).await;
        assert_eq!(seen["served_by"], service, "{path}");
        assert_eq!(seen["path"], path);
    }
}

#[tokio::test]
async fn nothing_reaches_the_payment_provider_or_internal_endpoints() {
    let shop = Shop::spawn().await;
    let admin = shop.admin();
    for path in [
        "/internal/events",
        "/api/v1/internal/events",
        "/admin/behaviour",
        "/api/v1/admin/behaviour",
        "/api/v1/psp/charges",
    ] {
        let res = shop.get(path).bearer_auth(&admin).send().await.unwrap();
        assert_problem(res, 404, "not-found").await;
    }
    assert_eq!(shop.total_hits(), 0);
}

#[tokio::test]
async fn the_state_goes_to_the_named_service() {
    let shop = Shop::spawn().await;
    let admin = shop.admin();
    for service in EVENT_SERVICES {
        let seen = echo(
            shop.get(&format!("/api/v1/admin/state?service={service}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(seen["served_by"], *service);
        assert_eq!(seen["method"], "GET");
        assert_eq!(seen["path"], "/admin/state");
        // The service checks the admin role itself.
        assert_eq!(seen["authorization"], format!("Bearer {admin}"));
        assert_eq!(shop.hits(service), 1, "{service}");
    }
}

#[tokio::test]
async fn the_state_is_for_admins_only_and_needs_a_known_service() {
    let shop = Shop::spawn().await;
    let path = "/api/v1/admin/state?service=order";
    let res = shop.get(path).send().await.unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let res = shop
        .get(path)
        .bearer_auth(shop.customer())
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let admin = shop.admin();
    for (path, status, slug) in [
        ("/api/v1/admin/state", 400, "malformed-request"),
        ("/api/v1/admin/state?service=", 400, "malformed-request"),
        ("/api/v1/admin/state?service=psp", 404, "not-found"),
        ("/api/v1/admin/state?service=registry", 404, "not-found"),
        ("/api/v1/admin/state?service=nope", 404, "not-found"),
    ] {
        let res = shop.get(path).bearer_auth(&admin).send().await.unwrap();
        assert_problem(res, status, slug).await;
    }
    let res = shop.post(path).bearer_auth(&admin).send().await.unwrap();
    assert_problem(res, 405, "method-not-allowed").await;
    assert_eq!(shop.total_hits(), 0);
}
