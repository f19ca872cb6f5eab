use std::time::Duration;

use serde_json::Value;

use crate::helpers::{ids, instance, TestRegistry};

#[tokio::test]
async fn a_watch_answers_when_the_set_changes() {
    let r = TestRegistry::start().await;
    r.register(&instance("catalog", "a", 1)).await;
    let index = r.list("catalog").await["index"].as_u64().unwrap();

    let (http, url) = (
        r.http.clone(),
        r.url(&format!(
            "/v1/services/catalog/instances?index={index}&wait=20000"
        )),
    );
    let watch = tokio::spawn(async move {
        http.get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    // Give the watch time to start waiting; if the change lands first, the index differs and
    // the watch answers at once, so the test passes either way.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!watch.is_finished(), "a watch at the current index waits");
    r.register(&instance("catalog", "b", 2)).await;

    let answer = watch.await.unwrap();
    assert_eq!(ids(&answer), ["a", "b"]);
    assert!(answer["index"].as_u64().unwrap() > index);
}

#[tokio::test]
async fn a_watch_answers_after_the_wait_with_the_same_index_when_nothing_changes() {
    let r = TestRegistry::start().await;
    r.register(&instance("catalog", "a", 1)).await;
    let before = r.list("catalog").await;
    let index = before["index"].as_u64().unwrap();

    // Changes to other services do not answer this watch.
    let (identity, path) = (
        instance("identity", "z", 3),
        format!("/v1/services/catalog/instances?index={index}&wait=300"),
    );
    let (_, answer) = tokio::join!(r.register(&identity), r.get_json(&path));
    assert_eq!(answer, before);
}

#[tokio::test]
async fn a_watch_with_an_old_index_answers_at_once() {
    let r = TestRegistry::start().await;
    r.register(&instance("catalog", "a", 1)).await;
    let index = r.list("catalog").await["index"].as_u64().unwrap();
    r.register(&instance("catalog", "b", 2)).await;
    // A 60 s wait would hang the test if the registry waited.
    let answer = r
        .get_json(&format!(
            "/v1/services/catalog/instances?index={index}&wait=60000"
        ))
        .await;
    assert_eq!(ids(&answer), ["a", "b"]);
}

#[tokio::test]
async fn stopping_the_registry_ends_waiting_watches_with_503() {
    let r = TestRegistry::start().await;
    let (http, url) = (
        r.http.clone(),
        r.url("/v1/services/catalog/instances?index=0&wait=60000"),
    );
    let watch = tokio::spawn(async move { http.get(url).send().await.unwrap().status() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Without this the drain would wait for the 60 s watch (and hit its 10 s deadline).
    r.stop().await;
    assert_eq!(watch.await.unwrap(), 503);
}
