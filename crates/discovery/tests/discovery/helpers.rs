use std::{net::SocketAddr, time::Duration};

use bazaar_discovery::{Instance, RegistryClient};
use tokio::{sync::oneshot, task::JoinHandle};

/// A registry running on loopback.
pub struct TestRegistry {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestRegistry {
    /// On a free port, with a lease TTL of `ttl`.
    pub async fn start(ttl: Duration) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), ttl).await
    }

    /// On `addr` (a port a stopped registry used, to simulate a restart).
    pub async fn start_on(addr: SocketAddr, ttl: Duration) -> Self {
        bazaar_runtime::telemetry::init_for_tests();
        let app = bazaar_registry::build(bazaar_registry::Settings {
            addr,
            lease_ttl: ttl,
        })
        .await
        .unwrap();
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        TestRegistry {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn client(&self) -> RegistryClient {
        RegistryClient::new(&format!("http://{}", self.addr))
    }

    /// Stops serving and waits until the port is closed; the state is lost, as in a crash.
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

pub fn instance(service: &str, id: &str, port: u16) -> Instance {
    Instance::new(service, id, format!("127.0.0.1:{port}"))
}

pub fn ids(instances: &[Instance]) -> Vec<&str> {
    instances.iter().map(|i| i.instance_id.as_str()).collect()
}

/// Polls until `done` holds; panics after a generous deadline (which only stops a broken build
/// from hanging: it is not a timing assertion).
pub async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
