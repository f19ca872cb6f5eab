//! `POST /api/v1/users`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{pointers, problem, TestApp, PASSWORD};

on_both_backends!(
    registering_answers_201_with_the_profile_a_location_and_a_lower_cased_email,
    a_second_account_with_the_same_email_in_any_case_is_a_conflict,
    every_invalid_field_is_reported_at_once_with_its_pointer,
    missing_and_mistyped_fields_are_422_with_their_pointers,
    malformed_json_is_a_400,
    a_body_that_is_not_json_is_a_415,
    a_body_over_64_kib_is_a_413,
    the_password_is_never_echoed,
    unknown_fields_like_roles_are_ignored,
);

async fn registering_answers_201_with_the_profile_a_location_and_a_lower_cased_email(app: TestApp) {
    let response = app
        .register("  Ada.Lovelace@Example.COM ", PASSWORD, "  Ada Lovelace ")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "ada.lovelace@example.com");
    assert_eq!(user["display_name"], "Ada Lovelace");
    let id = user["id"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(location, format!("/api/v1/users/{id}"));
    let created_at = user["created_at"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{created_at}"
    );
    assert_eq!(user.as_object().unwrap().len(), 4, "{user}");
}

async fn a_second_account_with_the_same_email_in_any_case_is_a_conflict(app: TestApp) {
    let first = app.register("grace@example.com", PASSWORD, "Grace").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = app
        .register("GRACE@example.com", "another password", "Grace 2")
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body = problem(again).await;
    assert_eq!(body["type"], "urn:bazaar:problem:conflict");
    // The first account is untouched: its password still works, the second does not.
    assert_eq!(
        app.login("grace@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("grace@example.com", "another password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn every_invalid_field_is_reported_at_once_with_its_pointer(app: TestApp) {
    let response = app.register("not-an-email", "short", " \t ").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = problem(response).await;
    assert_eq!(body["type"], "urn:bazaar:problem:validation");
    assert_eq!(pointers(&body), ["/email", "/password", "/display_name"]);
    for (email, password, name) in [
        ("a@b", PASSWORD, "x"),
        ("ok@example.com", &"p".repeat(129) as &str, "x"),
        ("ok@example.com", PASSWORD, &"n".repeat(101) as &str),
        ("ok@example.com", PASSWORD, "new\nline"),
    ] {
        let response = app.register(email, password, name).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{email} {name}"
        );
    }
    // Nothing was written by any of them.
    assert_eq!(
        app.register("ok@example.com", PASSWORD, "x").await.status(),
        StatusCode::CREATED
    );
}

async fn missing_and_mistyped_fields_are_422_with_their_pointers(app: TestApp) {
    let response = app.post_json("/api/v1/users", &json!({})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        pointers(&problem(response).await),
        ["/email", "/password", "/display_name"]
    );

    let response = app
        .post_json(
            "/api/v1/users",
            &json!({"email": 42, "password": null, "display_name": "Ada"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pointers(&problem(response).await), ["/email", "/password"]);
}

async fn malformed_json_is_a_400(app: TestApp) {
    for body in [
        "{\"email\": ",
        "not json",
        "{\"email\":\"a@b.co\"} trailing",
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/users"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            problem(response).await["type"],
            "urn:bazaar:problem:malformed-request"
        );
    }
}

async fn a_body_that_is_not_json_is_a_415(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/users"))
        .header("content-type", "text/plain")
        .body(r#"{"email":"a@example.com","password":"password1","display_name":"A"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        problem(response).await["type"],
        "urn:bazaar:problem:unsupported-media-type"
    );
}

async fn a_body_over_64_kib_is_a_413(app: TestApp) {
    let body = json!({
        "email": "big@example.com",
        "password": PASSWORD,
        "display_name": "x".repeat(70 * 1024),
    });
    let response = app.post_json("/api/v1/users", &body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        problem(response).await["type"],
        "urn:bazaar:problem:payload-too-large"
    );
}

async fn the_password_is_never_echoed(app: TestApp) {
    let secret = "Sup3r-Secret-Passw0rd";
    let created = app.register("echo@example.com", secret, "Echo").await;
    assert!(!created.text().await.unwrap().contains(secret));
    for response in [
        app.register("echo@example.com", secret, "Echo").await,
        app.register("bad", secret, "").await,
        app.login("echo@example.com", &format!("{secret}x")).await,
    ] {
        assert!(!response.status().is_success());
        assert!(!response.text().await.unwrap().contains(secret));
    }
}

async fn unknown_fields_like_roles_are_ignored(app: TestApp) {
    let response = app
        .post_json(
            "/api/v1/users",
            &json!({
                "email": "sneaky@example.com",
                "password": PASSWORD,
                "display_name": "Sneaky",
                "roles": ["customer", "admin"],
                "id": "00000000-0000-7000-8000-000000000000",
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    assert_ne!(user["id"], "00000000-0000-7000-8000-000000000000");
    let token = app.token("sneaky@example.com", PASSWORD).await;
    let (_, claims) = crate::helpers::decode_jwt(&token);
    assert_eq!(claims["roles"], json!(["customer"]));
}
