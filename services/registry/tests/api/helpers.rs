use std::time::Duration;

use serde_json::{json, Value};
use tokio::{sync::oneshot, task::JoinHandle};

/// A registry running on a free loopback port.
pub struct TestRegistry {
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestRegistry {
    pub async fn start() -> Self {
        Self::with_ttl(Duration::from_secs(10)).await
    }

    pub async fn with_ttl(lease_ttl: Duration) -> Self {
        bazaar_runtime::telemetry::init_for_tests();
        let settings = bazaar_registry::Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            lease_ttl,
        };
        let app = bazaar_registry::build(settings).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        TestRegistry {
            base,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn register(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/instances"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn heartbeat(&self, service: &str, id: &str) -> reqwest::Response {
        self.http
            .put(self.url(&format!("/v1/instances/{service}/{id}/heartbeat")))
            .send()
            .await
            .unwrap()
    }

    pub async fn list(&self, service: &str) -> Value {
        self.get_json(&format!("/v1/services/{service}/instances"))
            .await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Stops serving and waits until the port is closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn instance(service: &str, id: &str, port: u16) -> Value {
    json!({"service": service, "instance_id": id, "http_addr": format!("127.0.0.1:{port}")})
}

pub fn ids(list: &Value) -> Vec<String> {
    list["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap().to_owned())
        .collect()
}
