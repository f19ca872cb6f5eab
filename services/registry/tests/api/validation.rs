use serde_json::{json, Value};

use crate::helpers::TestRegistry;

async fn problem(r: &TestRegistry, body: Value) -> (u16, Value) {
    let res = r.register(&body).await;
    let status = res.status().as_u16();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    (status, res.json().await.unwrap())
}

fn pointers(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn invalid_fields_are_refused_with_their_pointers() {
    let r = TestRegistry::start().await;
    let (status, body) = problem(
        &r,
        json!({"service": "Bad Name", "instance_id": "", "http_addr": "nope", "grpc_addr": "127.0.0.1:0"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["type"], "urn:bazaar:problem:validation");
    assert_eq!(
        pointers(&body),
        ["/service", "/instance_id", "/http_addr", "/grpc_addr"]
    );
    assert_eq!(
        r.get_json("/v1/instances").await["instances"],
        json!([]),
        "nothing was written"
    );
}

#[tokio::test]
async fn missing_and_mistyped_fields_are_refused_with_their_pointers() {
    let r = TestRegistry::start().await;
    let (status, body) = problem(&r, json!({"service": "catalog", "instance_id": "a"})).await;
    assert_eq!(status, 422);
    assert_eq!(pointers(&body), ["/http_addr"]);

    let (status, body) =
        problem(&r, json!({"service": "catalog", "instance_id": "a", "http_addr": "127.0.0.1:1", "metadata": {"k": 1}}))
            .await;
    assert_eq!(status, 422);
    assert_eq!(pointers(&body), ["/metadata/k"]);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    let r = TestRegistry::start().await;
    let res = r
        .http
        .post(r.url("/v1/instances"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = r
        .http
        .post(r.url("/v1/instances"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
}
