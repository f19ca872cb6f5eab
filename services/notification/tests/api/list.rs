//! `GET /api/v1/me/notifications`: pages, cursors, limits and the unread count.

use bazaar_notification::{
    domain::{Kind, NewNotification},
    store::notifications,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{both, problem, user, World};

/// Stores `n` order notifications for `user_id`; returns their messages, oldest first.
async fn seed(world: &World, user_id: &str, n: usize) -> Vec<String> {
    let db = world.db().await;
    let mut messages = Vec::new();
    for i in 0..n {
        let message = format!("Notification {i}");
        let mut tx = db.begin().await.unwrap();
        notifications::insert(
            &mut tx,
            &NewNotification {
                user_id: user_id.to_owned(),
                kind: Kind::OrderConfirmed,
                order_id: Some(format!("order-{i}")),
                message: message.clone(),
            },
            &uuid::Uuid::now_v7().to_string(),
            bazaar_runtime::time::now_micros(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        messages.push(message);
    }
    messages
}

fn messages(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"].as_str().unwrap().to_owned())
        .collect()
}

both!(pages_list_every_notification_once_newest_first, |world| {
    let ada = user();
    let mut want = seed(&world, &ada, 7).await;
    seed(&world, &user(), 2).await;
    want.reverse();
    let mut seen = Vec::new();
    let mut cursors = Vec::new();
    let mut path = "/api/v1/me/notifications?limit=3".to_owned();
    loop {
        let page = world.get_json_as(&ada, &path).await;
        assert_eq!(page["unread"], 7, "the count covers every page");
        seen.extend(messages(&page));
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        cursors.push(cursor.to_owned());
        path = format!("/api/v1/me/notifications?limit=3&cursor={cursor}");
    }
    assert_eq!(seen, want);
    assert_eq!(cursors.len(), 2);

    // The default page holds 20.
    let page = world.get_json_as(&ada, "/api/v1/me/notifications").await;
    assert_eq!(messages(&page), want);
    assert!(page["next_cursor"].is_null());
});

both!(a_tampered_or_foreign_cursor_is_400, |world| {
    let ada = user();
    seed(&world, &ada, 3).await;
    let page = world
        .get_json_as(&ada, "/api/v1/me/notifications?limit=1")
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();

    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), "abc", "abc.def", "%2E"] {
        let res = world
            .get_as(&ada, &format!("/api/v1/me/notifications?cursor={bad}"))
            .await;
        let p = problem(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(p["type"], "urn:bazaar:problem:malformed-request");
    }
    // Ada's cursor means nothing in another user's list.
    let res = world
        .get_as(
            &user(),
            &format!("/api/v1/me/notifications?cursor={cursor}"),
        )
        .await;
    problem(res, StatusCode::BAD_REQUEST).await;
    // The genuine one works.
    let next = world
        .get_json_as(
            &ada,
            &format!("/api/v1/me/notifications?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
});

both!(limits_outside_1_to_100_are_400, |world| {
    let ada = user();
    seed(&world, &ada, 2).await;
    for bad in ["0", "101", "-1", "ten", "1.5", ""] {
        let res = world
            .get_as(&ada, &format!("/api/v1/me/notifications?limit={bad}"))
            .await;
        problem(res, StatusCode::BAD_REQUEST).await;
    }
    for good in ["1", "100"] {
        world
            .get_json_as(&ada, &format!("/api/v1/me/notifications?limit={good}"))
            .await;
    }
});

both!(the_list_needs_a_valid_token, |world| {
    let res = world
        .client
        .get(world.url("/api/v1/me/notifications"))
        .send()
        .await
        .unwrap();
    let p = problem(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(p["type"], "urn:bazaar:problem:unauthorized");
    let res = world
        .client
        .get(world.url("/api/v1/me/notifications"))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
});
