//! Starting identity for a test and talking to it.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bazaar_auth::SigningKey;
use bazaar_identity::{build, Settings};
use bazaar_store::Db;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin password every test instance bootstraps with.
pub const ADMIN_EMAIL: &str = "admin@bazaar.local";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const PASSWORD: &str = "correct horse battery";

/// Where an identity database lives: a fresh one per test.
pub struct Location {
    data_dir: Arc<tempfile::TempDir>,
    database_url: Option<String>,
}

impl Location {
    /// A temporary directory for an SQLite file.
    pub fn sqlite() -> Location {
        Location {
            data_dir: Arc::new(tempfile::tempdir().unwrap()),
            database_url: None,
        }
    }

    /// A new PostgreSQL database, or `None` when `BAZAAR_TEST_POSTGRES_URL` is unset.
    pub fn postgres() -> Option<Location> {
        Some(Location {
            data_dir: Arc::new(tempfile::tempdir().unwrap()),
            database_url: Some(bazaar_store::testing::postgres_template("identity_api")?),
        })
    }
}

/// A running identity.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    data_dir: Arc<tempfile::TempDir>,
    database_url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// On a fresh SQLite database in a temporary directory.
    pub async fn sqlite() -> TestApp {
        TestApp::at(&Location::sqlite()).await
    }

    /// On a fresh PostgreSQL database, or `None` (with a printed reason) when
    /// `BAZAAR_TEST_POSTGRES_URL` is unset.
    pub async fn postgres() -> Option<TestApp> {
        Some(TestApp::at(&Location::postgres()?).await)
    }

    /// An instance on the database at `location` (several may share one, like replicas).
    pub async fn at(location: &Location) -> TestApp {
        TestApp::start(
            Arc::clone(&location.data_dir),
            location.database_url.clone(),
        )
        .await
    }

    async fn start(data_dir: Arc<tempfile::TempDir>, database_url: Option<String>) -> TestApp {
        bazaar_runtime::telemetry::init_for_tests();
        let app = build(Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_owned(),
            database_url: database_url.clone(),
            admin_password: Some(ADMIN_PASSWORD.into()),
            bus: bazaar_messaging::BusConfig::default(),
            resolver: bazaar_discovery::StaticResolver::new(Default::default()),
        })
        .await
        .expect("identity builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        TestApp {
            base,
            client: reqwest::Client::new(),
            data_dir,
            database_url,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops this instance and builds a new one on the same database.
    pub async fn restart(mut self) -> TestApp {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        TestApp::start(Arc::clone(&self.data_dir), self.database_url.clone()).await
    }

    /// The service's database, opened next to it.
    pub async fn db(&self) -> Db {
        Db::open_for_service(
            "identity",
            self.data_dir.path(),
            self.database_url.as_deref(),
            bazaar_identity::store::MIGRATIONS,
        )
        .await
        .unwrap()
    }

    /// The current private signing key, straight from the database (to forge tokens that
    /// are correctly signed but otherwise wrong).
    pub async fn signing_key(&self) -> SigningKey {
        bazaar_identity::store::keys::current(&self.db().await)
            .await
            .unwrap()
            .unwrap()
            .signing_key()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn register(&self, email: &str, password: &str, display_name: &str) -> Response {
        self.post_json(
            "/api/v1/users",
            &json!({"email": email, "password": password, "display_name": display_name}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/token",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// The access token of a successful login.
    pub async fn token(&self, email: &str, password: &str) -> String {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Registers a new customer with a unique email; returns the user and a token.
    pub async fn customer(&self) -> (Value, String) {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let response = self.register(&email, PASSWORD, "Test User").await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let user: Value = response.json().await.unwrap();
        let token = self.token(&email, PASSWORD).await;
        (user, token)
    }

    pub async fn admin_token(&self) -> String {
        self.token(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The decoded header and claims of a JWT.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let claims = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&claims).unwrap(),
    )
}

/// A problem body, checked for the problem+json media type.
pub async fn problem(response: Response) -> Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{response:?}"
    );
    response.json().await.unwrap()
}

/// The pointers of a validation problem's errors.
pub fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect()
}
