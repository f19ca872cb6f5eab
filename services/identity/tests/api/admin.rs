//! The admin account bootstrapped on an empty database.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{decode_jwt, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

on_both_backends!(
    the_bootstrapped_admin_logs_in_with_the_configured_password_and_has_the_admin_role,
    the_admin_email_cannot_be_registered_by_anyone_else,
);

async fn the_bootstrapped_admin_logs_in_with_the_configured_password_and_has_the_admin_role(
    app: TestApp,
) {
    let token = app.admin_token().await;
    let (_, claims) = decode_jwt(&token);
    assert_eq!(claims["roles"], json!(["customer", "admin"]));

    let response = app.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["display_name"], "Administrator");

    assert_eq!(
        app.login(ADMIN_EMAIL, "not the admin password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn the_admin_email_cannot_be_registered_by_anyone_else(app: TestApp) {
    let response = app
        .register("Admin@Bazaar.Local", "attacker password", "Mallory")
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
}
