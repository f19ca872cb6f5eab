use std::collections::HashMap;

use axum::{routing::get, Json, Router};
use bazaar_auth::{JwkSet, KeySource, SigningKey};
use bazaar_discovery::{jwks_source, StaticResolver};

#[tokio::test]
async fn the_jwks_source_fetches_keys_from_an_identity_instance() {
    let set = JwkSet {
        keys: vec![SigningKey::generate().unwrap().public_jwk()],
    };
    let served = set.clone();
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get(move || async move { Json(served) }),
    );
    let app = bazaar_runtime::App::bind("127.0.0.1:0".parse().unwrap(), app)
        .await
        .unwrap();
    let addr = app.local_addr();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));

    // A dead instance first: the source moves on to the live one.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let resolver = StaticResolver::new(HashMap::from([(
        "identity".to_owned(),
        vec![dead.to_string(), addr.to_string()],
    )]));
    let source = jwks_source(resolver, reqwest::Client::new());
    for _ in 0..5 {
        assert_eq!(source.fetch().await.unwrap(), set);
    }
    server.abort();
}

#[tokio::test]
async fn the_jwks_source_fails_when_no_identity_is_known() {
    let source = jwks_source(StaticResolver::new(HashMap::new()), reqwest::Client::new());
    assert!(source.fetch().await.is_err());
}
