//! Starting and stopping a whole shop for a test.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running `bazaar up`.
pub struct Shop {
    child: Child,
    pub dir: tempfile::TempDir,
    pub gateway: String,
    pub registry: String,
    pub client: reqwest::Client,
}

#[derive(Default)]
pub struct Options {
    pub env: Vec<(String, String)>,
    pub postgres_template: Option<String>,
    /// Let `bazaar up` generate the admin password.
    pub generated_admin_password: bool,
}

/// A free port for a program that is told its port in advance, taken from below the
/// kernel's ephemeral range (as `bazaar chaos` does): every service of `bazaar up` binds port 0,
/// so a released ephemeral port could be handed to one of them before the gateway binds it.
pub fn free_port() -> u16 {
    use rand::Rng;
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let mut rng = rand::thread_rng();
    (0..200)
        .find_map(|_| TcpListener::bind(("127.0.0.1", rng.gen_range(10_000..low))).ok())
        .expect("a free port below the ephemeral range")
        .local_addr()
        .unwrap()
        .port()
}

impl Shop {
    pub async fn start() -> Shop {
        Self::start_with(Options::default()).await
    }

    /// A shop on fresh PostgreSQL databases, or `None` (with a printed reason) when
    /// `BAZAAR_TEST_POSTGRES_URL` is unset.
    pub async fn on_postgres() -> Option<Shop> {
        let template = bazaar_store::testing::postgres_template("bazaar_sys")?;
        Some(
            Self::start_with(Options {
                postgres_template: Some(template),
                ..Options::default()
            })
            .await,
        )
    }

    /// Starts a shop; a start-up that lost its gateway or registry port to another test
    /// (both pick free ports the same way) is retried on new ports.
    pub async fn start_with(opts: Options) -> Shop {
        for _ in 0..3 {
            match Self::try_start(&opts).await {
                Ok(shop) => return shop,
                Err(logs) if logs.contains("Address already in use") => continue,
                Err(logs) => panic!("{logs}"),
            }
        }
        panic!("bazaar up found its ports taken three times")
    }

    async fn try_start(opts: &Options) -> Result<Shop, String> {
        let dir = tempfile::tempdir().unwrap();
        let gw_port = free_port();
        let reg_port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bazaar"));
        cmd.arg("up")
            .env("BAZAAR_DATA_DIR", dir.path())
            .env("BAZAAR_GATEWAY_ADDR", format!("127.0.0.1:{gw_port}"))
            .env(
                "BAZAAR_REGISTRY_URL",
                format!("http://127.0.0.1:{reg_port}"),
            )
            .env("BAZAAR_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BAZAAR_RATE_LIMIT_USER", "100000/s,burst=100000")
            .env("BAZAAR_RATE_LIMIT_ANON", "100000/s,burst=100000")
            .env("BAZAAR_LEASE_TTL", "3s")
            .env_remove("BAZAAR_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("up.stderr")).unwrap(),
            ));
        if opts.generated_admin_password {
            cmd.env_remove("BAZAAR_ADMIN_PASSWORD");
        }
        if let Some(t) = &opts.postgres_template {
            cmd.env("BAZAAR_DATABASE_URL", t);
            // Several shops run side by side on one PostgreSQL server (100 connections).
            cmd.env("BAZAAR_DB_MAX_CONNECTIONS", "3");
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        // Its own process group, like a shell job: Ctrl-C can be sent to the group.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap();
        // Drain stdout on a thread (it must never fill up and block the supervisor).
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if std::env::var_os("TEST_LOG").is_some() {
                    println!("{line}");
                }
                if line.contains("Bazaar is up in") {
                    let _ = tx.send(());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if rx.try_recv().is_ok() {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let logs =
                    std::fs::read_to_string(dir.path().join("up.stderr")).unwrap_or_default();
                let tail: Vec<&str> = logs.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!(
                    "bazaar up exited during start-up: {status}\n{}",
                    tail.join("\n")
                ));
            }
            assert!(Instant::now() < deadline, "bazaar up was not ready in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Shop {
            child,
            dir,
            gateway: format!("http://127.0.0.1:{gw_port}"),
            registry: format!("http://127.0.0.1:{reg_port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// What the supervisor and its children logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.stderr")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn run_file(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("run.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn process(&self, service: &str) -> Value {
        self.run_file()["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["service"] == service)
            .cloned()
            .unwrap()
    }

    /// Registers a fresh customer and returns (email, token, user id).
    pub async fn customer(&self) -> (String, String, String) {
        let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
        let res = self
            .client
            .post(self.url("/api/v1/users"))
            .json(&json!({"email": email, "password": "correct horse battery", "display_name": "Test User"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = self.token(&email, "correct horse battery").await;
        (email, token, id)
    }

    pub async fn token(&self, email: &str, password: &str) -> String {
        let res = self
            .client
            .post(self.url("/api/v1/auth/token"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token("admin@bazaar.local", ADMIN_PASSWORD).await
    }

    /// The supervisor's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the supervisor to exit; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        // SIGTERM lets the supervisor stop its children; SIGKILL after a deadline.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts a problem+json answer with `status` and `slug`; returns the body.
pub async fn assert_problem(res: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "unexpected status");
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/problem+json"),
        "content type {ct}"
    );
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:bazaar:problem:{slug}"), "{body}");
    assert_eq!(body["status"], status);
    assert!(
        body["trace_id"].as_str().is_some_and(|t| t.len() == 32),
        "{body}"
    );
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// The pointers of a validation problem.
pub fn pointers(body: &Value) -> Vec<String> {
    let mut p: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect();
    p.sort();
    p
}
