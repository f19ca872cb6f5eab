//! `POST /api/v1/me/notifications/{id}/read`.

use bazaar_contracts::events::UserRegisteredV1;
use reqwest::StatusCode;

use crate::helpers::{both, problem, user};

both!(marking_read_is_idempotent_and_owner_only, |world| {
    let (ada, bob) = (user(), user());
    for (id, name) in [(&ada, "Ada"), (&bob, "Bob")] {
        world
            .identity
            .publish(&UserRegisteredV1 {
                user_id: id.clone(),
                display_name: name.into(),
            })
            .await;
    }
    let ada_page = world.wait_for(&ada, 1).await;
    let bob_page = world.wait_for(&bob, 1).await;
    let ada_id = ada_page["items"][0]["id"].as_str().unwrap().to_owned();
    let bob_id = bob_page["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(ada_page["unread"], 1);

    // Bob cannot read Ada's: 404, as if it did not exist, and it stays unread.
    problem(world.mark_read(&bob, &ada_id).await, StatusCode::NOT_FOUND).await;
    let still = world.get_json_as(&ada, "/api/v1/me/notifications").await;
    assert_eq!(still["items"][0]["read"], false);
    assert_eq!(still["unread"], 1);

    for _ in 0..2 {
        let res = world.mark_read(&ada, &ada_id).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert!(res.bytes().await.unwrap().is_empty());
    }
    let now = world.get_json_as(&ada, "/api/v1/me/notifications").await;
    assert_eq!(now["items"][0]["read"], true);
    assert_eq!(now["unread"], 0);
    // Bob's is untouched.
    let bobs = world.get_json_as(&bob, "/api/v1/me/notifications").await;
    assert_eq!(bobs["items"][0]["id"], bob_id.as_str());
    assert_eq!(bobs["items"][0]["read"], false);
    assert_eq!(bobs["unread"], 1);

    // Unknown ids and ids that are not UUIDs are 404 too.
    let unknown = uuid::Uuid::now_v7().to_string();
    for id in [unknown.as_str(), "not-a-uuid", "123"] {
        problem(world.mark_read(&ada, id).await, StatusCode::NOT_FOUND).await;
    }
    // Without a token: 401.
    let res = world
        .client
        .post(world.url(&format!("/api/v1/me/notifications/{ada_id}/read")))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
    // Another method: 405.
    let res = world
        .get_as(&ada, &format!("/api/v1/me/notifications/{ada_id}/read"))
        .await;
    problem(res, StatusCode::METHOD_NOT_ALLOWED).await;
});
