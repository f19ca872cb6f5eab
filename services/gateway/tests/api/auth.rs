use bazaar_auth::{unix_now, Claims, SigningKey};

use crate::helpers::{assert_problem, echo_of, TestApp};

#[tokio::test]
async fn a_required_route_without_a_token_is_a_401_with_bearer_challenge() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/mine").send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(app.alpha.completed(), 0);
    echo_of(
        app.get("/api/v1/mine")
            .bearer_auth(app.customer("u1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn an_invalid_token_on_a_public_route_is_a_401_invalid_token() {
    let app = TestApp::spawn().await;
    let res = app
        .get("/api/v1/things")
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_problem(res, 401, "unauthorized").await;

    // Signed by a key the gateway does not trust.
    let stranger = SigningKey::generate().unwrap();
    let forged = stranger
        .sign(&Claims::new_access("u1", vec!["admin".into()], unix_now()))
        .unwrap();
    let res = app
        .get("/api/v1/things")
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;

    let mut expired = Claims::new_access("u1", vec!["customer".into()], unix_now() - 3600);
    expired.exp = unix_now() - 600;
    let res = app
        .get("/api/v1/things")
        .bearer_auth(app.sign(&expired))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(app.alpha.completed(), 0);

    // No token at all is fine on a public route.
    echo_of(app.get("/api/v1/things").send().await.unwrap()).await;
}

#[tokio::test]
async fn an_admin_route_refuses_customers_and_serves_admins() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/admin/things").send().await.unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .get("/api/v1/admin/things")
        .bearer_auth(app.customer("u1"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    assert_eq!(app.alpha.completed(), 0);
    let echo = echo_of(
        app.get("/api/v1/admin/things")
            .bearer_auth(app.admin())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["path"], "/admin/things");
}
