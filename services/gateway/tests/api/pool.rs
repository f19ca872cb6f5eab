//! Upstream connections are kept and reused, and losing an idle one costs a client nothing.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use bazaar_auth::{JwkSet, SigningKey, Verifier};
use bazaar_discovery::StaticResolver;
use bazaar_gateway::{RateLimits, RouteTable, Settings};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A minimal HTTP/1.1 upstream that counts the connections it accepts; with `close_after`,
/// it closes each connection (without announcing it) once it has answered that many requests,
/// as a server closing idle keep-alive connections does.
async fn counting_upstream(close_after: Option<usize>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, close_after));
        }
    });
    (addr, accepted)
}

async fn serve(mut stream: TcpStream, close_after: Option<usize>) {
    let mut buf = Vec::new();
    let mut answered = 0;
    loop {
        // The gateway sends GETs without a body: a request ends at the blank line.
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        buf.drain(..end + 4);
        let res = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
        if stream.write_all(res).await.is_err() {
            return;
        }
        answered += 1;
        if close_after == Some(answered) {
            return;
        }
    }
}

async fn gateway_in_front_of(addr: &str) -> String {
    bazaar_runtime::telemetry::init_for_tests();
    let resolver = StaticResolver::new(HashMap::from([(
        "counted".to_owned(),
        vec![addr.to_owned()],
    )]));
    let key = SigningKey::generate().unwrap();
    let verifier = Arc::new(Verifier::with_keys(JwkSet {
        keys: vec![key.public_jwk()],
    }));
    let routes = "[[route]]\nprefix = \"/api/v1/counted\"\nservice = \"counted\"\n";
    let settings = Settings {
        addr: "127.0.0.1:0".parse().unwrap(),
        resolver,
        verifier,
        routes: RouteTable::from_toml_str(routes).unwrap(),
        rate_limits: RateLimits::default(),
    };
    let app = bazaar_gateway::build(settings).await.unwrap();
    let url = format!("http://{}/api/v1/counted", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    url
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let (addr, accepted) = counting_upstream(None).await;
    let url = gateway_in_front_of(&addr).await;
    let client = client();
    for _ in 0..10 {
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_upstream_closing_idle_connections_causes_no_client_errors_for_gets() {
    let (addr, accepted) = counting_upstream(Some(1)).await;
    let url = gateway_in_front_of(&addr).await;
    let client = client();
    for i in 0..20 {
        if i % 2 == 0 {
            // Sometimes the close has arrived before the next request, sometimes not.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "request {i}");
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 20);
}
