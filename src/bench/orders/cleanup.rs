//! What the NATS + PostgreSQL configuration leaves on shared servers, and how it is removed:
//! one PostgreSQL database per service (`bazaar_bench_<run>_<service>`) and one JetStream
//! stream per service (`BAZAAR_BENCH<RUN>-<SERVICE>`, with its consumers).
//!
//! Databases are dropped with `psql` (the bench does not link a PostgreSQL client of its
//! own); streams through the JetStream API over a minimal NATS text-protocol connection.
//! Whatever cannot be removed is named in the report, so it can be removed by hand.
//! A run interrupted by Ctrl-C is cleaned up by [`clean_up_interrupted`], which the bench's
//! interrupt path calls once every child has exited.

use std::{sync::Mutex, time::Duration};

use anyhow::Context as _;
use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
};

use crate::cli::UsageError;

/// How long one cleanup step (a `psql` call, a NATS request) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The servers of the NATS + PostgreSQL configuration, and the names this run uses on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// `postgres://user@host:port` (no database, no trailing slash).
    postgres_base: String,
    /// The query of the server URL (`sslmode=…`), kept on every database URL.
    postgres_query: Option<String>,
    /// `bazaar_bench_<run>`: every database of the run starts with it and `_`.
    pub database_prefix: String,
    pub nats_url: String,
    /// `bench<run>`, the bus namespace: streams are `BAZAAR_BENCH<RUN>-<SERVICE>`.
    pub namespace: String,
}

impl External {
    /// Checks the server URLs and names a run `run` (lower-case letters and digits).
    pub fn new(postgres: &str, nats: &str, run: &str) -> Result<External, UsageError> {
        let bad = |why: &str| UsageError(format!("--postgres {}: {why}", redact(postgres)));
        let url = url::Url::parse(postgres).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad("must be a postgres:// URL"));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(bad(
                "must name the server only (the bench creates its own databases), e.g. postgres://postgres@127.0.0.1:5432",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        let query = url.query().map(str::to_owned);
        let mut base = url;
        base.set_query(None);
        base.set_fragment(None);
        let postgres_base = base.as_str().trim_end_matches('/').to_owned();
        if !nats.starts_with("nats://") {
            return Err(UsageError(format!("--nats {nats}: must be a nats:// URL")));
        }
        if run.is_empty()
            || !run
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(UsageError(format!("bad run name `{run}`")));
        }
        Ok(External {
            postgres_base,
            postgres_query: query,
            database_prefix: format!("bazaar_bench_{run}"),
            nats_url: nats.to_owned(),
            namespace: format!("bench{run}"),
        })
    }

    /// `BAZAAR_DATABASE_URL` for `bazaar up`: `<server>/bazaar_bench_<run>_{service}`.
    pub fn database_template(&self) -> String {
        self.database_url(&format!("{}_{{service}}", self.database_prefix))
    }

    fn database_url(&self, database: &str) -> String {
        match &self.postgres_query {
            Some(q) => format!("{}/{database}?{q}", self.postgres_base),
            None => format!("{}/{database}", self.postgres_base),
        }
    }

    /// The prefix of every stream of the run.
    pub fn stream_prefix(&self) -> String {
        format!("BAZAAR_{}-", self.namespace.to_ascii_uppercase())
    }
}

/// The URL with its password hidden, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// What was removed, and what is left behind (by name, or a pattern) with the reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cleanup {
    pub dropped_databases: Vec<String>,
    pub deleted_streams: Vec<String>,
    /// `"<what is left>: <why>"`.
    pub left_behind: Vec<String>,
}

impl Cleanup {
    /// One line for the report.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "dropped {} PostgreSQL databases, deleted {} JetStream streams",
            self.dropped_databases.len(),
            self.deleted_streams.len()
        );
        if !self.left_behind.is_empty() {
            s.push_str("; left behind: ");
            s.push_str(&self.left_behind.join("; "));
        }
        s
    }
}

/// Runs whose servers still hold the run's databases and streams.
static PENDING: Mutex<Vec<External>> = Mutex::new(Vec::new());

/// Remembers `external` until [`clean_up`] has removed what it names.
pub fn remember(external: &External) {
    PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(external.clone());
}

/// Drops the run's databases and deletes its streams (every service must have stopped).
pub async fn clean_up(external: &External) -> Cleanup {
    let mut cleanup = Cleanup::default();
    match drop_databases(external).await {
        Ok(dropped) => cleanup.dropped_databases = dropped,
        Err(e) => cleanup.left_behind.push(format!(
            "PostgreSQL databases {}_* on {}: {e:#}",
            external.database_prefix,
            redact(&external.postgres_base)
        )),
    }
    match delete_streams(external).await {
        Ok(deleted) => cleanup.deleted_streams = deleted,
        Err(e) => cleanup.left_behind.push(format!(
            "JetStream streams {}* on {}: {e:#}",
            external.stream_prefix(),
            external.nats_url
        )),
    }
    PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != external);
    cleanup
}

/// Cleans up after runs an interrupt cut short; says what it did on stderr.
pub async fn clean_up_interrupted() {
    let pending: Vec<External> = PENDING.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for external in pending {
        let cleanup = clean_up(&external).await;
        eprintln!("bench: {}", cleanup.summary());
    }
}

/// Drops every database of the run through `psql` on the server's `postgres` database.
async fn drop_databases(external: &External) -> anyhow::Result<Vec<String>> {
    let psql = super::super::process::find_on_path("psql")
        .context("psql is not installed, so the bench cannot drop them")?;
    // Names are `bazaar_bench_<run>_<service>`: letters, digits and `_` only, so quoting
    // them in SQL is safe; `starts_with` avoids LIKE's `_` wildcard.
    let listed = psql_command(
        &psql,
        external,
        &format!(
            "SELECT datname FROM pg_database WHERE starts_with(datname, '{}_') ORDER BY 1",
            external.database_prefix
        ),
    )
    .await?;
    let mut dropped = Vec::new();
    for name in listed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            anyhow::bail!("unexpected database name {name:?}");
        }
        // FORCE: a connection a stopping service left behind must not keep the database.
        psql_command(
            &psql,
            external,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await?;
        dropped.push(name.to_owned());
    }
    Ok(dropped)
}

/// Runs one statement with `psql` on the server's `postgres` database; the password goes
/// through `PGPASSWORD`, not the command line.
async fn psql_command(
    psql: &std::path::Path,
    external: &External,
    sql: &str,
) -> anyhow::Result<String> {
    let mut url = url::Url::parse(&external.database_url("postgres"))?;
    let password = url.password().map(str::to_owned);
    let _ = url.set_password(None);
    let mut cmd = tokio::process::Command::new(psql);
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(url.as_str())
        .args(["-c", sql])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = tokio::time::timeout(STEP_TIMEOUT, cmd.output())
        .await
        .context("psql did not finish")?
        .context("run psql")?;
    if !out.status.success() {
        anyhow::bail!(
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Deletes every JetStream stream of the run (their consumers go with them).
async fn delete_streams(external: &External) -> anyhow::Result<Vec<String>> {
    let prefix = external.stream_prefix();
    let mut nats = NatsConn::connect(&external.nats_url).await?;
    let mut names = Vec::new();
    loop {
        let answer = nats
            .request(
                "$JS.API.STREAM.NAMES",
                &serde_json::json!({ "offset": names.len() }).to_string(),
            )
            .await?;
        let page = stream_names(&answer)?;
        let got = page.streams.len();
        names.extend(page.streams);
        if got == 0 || names.len() >= page.total {
            break;
        }
    }
    let mut deleted = Vec::new();
    for name in names.into_iter().filter(|n| n.starts_with(&prefix)) {
        let answer = nats
            .request(&format!("$JS.API.STREAM.DELETE.{name}"), "")
            .await?;
        api_error(&answer).with_context(|| format!("delete stream {name}"))?;
        deleted.push(name);
    }
    Ok(deleted)
}

/// A page of `$JS.API.STREAM.NAMES`.
#[derive(Debug, PartialEq)]
pub struct StreamNames {
    pub total: usize,
    pub streams: Vec<String>,
}

/// Reads a `$JS.API.STREAM.NAMES` answer (`streams` is `null` when there are none).
pub fn stream_names(answer: &[u8]) -> anyhow::Result<StreamNames> {
    api_error(answer)?;
    let v: serde_json::Value = serde_json::from_slice(answer).context("read stream names")?;
    Ok(StreamNames {
        total: v["total"].as_u64().unwrap_or(0) as usize,
        streams: v["streams"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The error of a JetStream API answer, if it is one.
pub fn api_error(answer: &[u8]) -> anyhow::Result<()> {
    let v: serde_json::Value =
        serde_json::from_slice(answer).context("read a JetStream API answer")?;
    match v.get("error") {
        Some(e) => anyhow::bail!(
            "JetStream: {} ({})",
            e["description"].as_str().unwrap_or("error"),
            e["err_code"]
        ),
        None => Ok(()),
    }
}

/// A NATS connection that can only make requests: enough for the JetStream API.
pub struct NatsConn {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    inbox: String,
}

impl NatsConn {
    /// Connects to `nats://[user:pass@|token@]host[:port]`.
    pub async fn connect(url: &str) -> anyhow::Result<NatsConn> {
        let u = url::Url::parse(url).with_context(|| format!("parse {url}"))?;
        let host = u.host_str().context("the NATS URL has no host")?;
        let port = u.port().unwrap_or(4222);
        let stream = tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .context("connect to NATS: timed out")?
            .with_context(|| format!("connect to NATS at {host}:{port}"))?;
        let (read, writer) = stream.into_split();
        let mut conn = NatsConn {
            reader: BufReader::new(read),
            writer,
            inbox: format!("_INBOX.bench.{}", uuid::Uuid::new_v4().simple()),
        };
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "headers": false,
            "lang": "rust", "version": env!("CARGO_PKG_VERSION"), "protocol": 1,
            "name": "bazaar-bench-cleanup",
        });
        let user = percent_decode(u.username());
        match u.password() {
            Some(pass) => {
                connect["user"] = user.into();
                connect["pass"] = percent_decode(pass).into();
            }
            None if !user.is_empty() => connect["auth_token"] = user.into(),
            None => {}
        }
        // The server speaks first (INFO); PING/PONG then proves the CONNECT was accepted.
        conn.next_line().await?;
        let hello = format!("CONNECT {connect}\r\nPING\r\nSUB {} 1\r\n", conn.inbox);
        conn.writer.write_all(hello.as_bytes()).await?;
        loop {
            let line = conn.next_line().await?;
            if line == "PONG" {
                return Ok(conn);
            }
            if let Some(err) = line.strip_prefix("-ERR") {
                anyhow::bail!("NATS refused the connection:{err}");
            }
        }
    }

    /// Publishes `payload` to `subject` and waits for the reply.
    pub async fn request(&mut self, subject: &str, payload: &str) -> anyhow::Result<Vec<u8>> {
        let publish = format!(
            "PUB {subject} {} {}\r\n{payload}\r\n",
            self.inbox,
            payload.len()
        );
        self.writer.write_all(publish.as_bytes()).await?;
        tokio::time::timeout(STEP_TIMEOUT, self.reply())
            .await
            .with_context(|| format!("no answer to {subject} (is JetStream enabled?)"))?
    }

    async fn reply(&mut self) -> anyhow::Result<Vec<u8>> {
        loop {
            let line = self.next_line().await?;
            if let Some(size) = msg_size(&line) {
                let mut payload = vec![0; size + 2];
                self.reader.read_exact(&mut payload).await?;
                payload.truncate(size);
                return Ok(payload);
            }
            if let Some(err) = line.strip_prefix("-ERR") {
                anyhow::bail!("NATS:{err}");
            }
        }
    }

    /// The next protocol line, answering the server's PINGs on the way.
    async fn next_line(&mut self) -> anyhow::Result<String> {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(STEP_TIMEOUT, self.reader.read_line(&mut line))
                .await
                .context("NATS did not answer")??;
            if n == 0 {
                anyhow::bail!("NATS closed the connection");
            }
            let line = line.trim_end().to_owned();
            if line == "PING" {
                self.writer.write_all(b"PONG\r\n").await?;
                continue;
            }
            return Ok(line);
        }
    }
}

/// The payload size of a `MSG <subject> <sid> [reply-to] <size>` line.
pub fn msg_size(line: &str) -> Option<usize> {
    let mut parts = line.split_ascii_whitespace();
    if parts.next()? != "MSG" {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    if !(3..=4).contains(&rest.len()) {
        return None;
    }
    rest.last()?.parse().ok()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn databases_and_streams_are_named_after_the_run() {
        let e = External::new(
            "postgres://postgres@127.0.0.1:5432/",
            "nats://127.0.0.1:4222",
            "k3x9",
        )
        .unwrap();
        assert_eq!(
            e.database_template(),
            "postgres://postgres@127.0.0.1:5432/bazaar_bench_k3x9_{service}"
        );
        assert_eq!(e.namespace, "benchk3x9");
        assert_eq!(e.stream_prefix(), "BAZAAR_BENCHK3X9-");
        assert_eq!(
            e.database_url("postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
    }

    #[test]
    fn the_server_urls_query_is_kept_on_every_database() {
        let e = External::new(
            "postgresql://u:p%40ss@db.example:6543?sslmode=require",
            "nats://n:4222",
            "r1",
        )
        .unwrap();
        assert_eq!(
            e.database_template(),
            "postgresql://u:p%40ss@db.example:6543/bazaar_bench_r1_{service}?sslmode=require"
        );
    }

    #[test]
    fn bad_server_urls_are_usage_errors_without_the_password() {
        let err = External::new("postgres://u:secret@h/mydb", "nats://n", "r").unwrap_err();
        assert!(err.0.contains("server only"), "{}", err.0);
        assert!(!err.0.contains("secret"), "{}", err.0);
        assert!(External::new("mysql://h", "nats://n", "r").is_err());
        assert!(External::new("postgres://h", "http://n", "r").is_err());
        assert!(External::new("postgres://h", "nats://n", "R_1").is_err());
    }

    #[test]
    fn reads_msg_lines_and_api_answers() {
        assert_eq!(msg_size("MSG _INBOX.x 1 42"), Some(42));
        assert_eq!(msg_size("MSG _INBOX.x 1 reply.to 7"), Some(7));
        assert_eq!(msg_size("+OK"), None);
        assert_eq!(msg_size("MSG only"), None);
        let page =
            stream_names(br#"{"type":"x","total":2,"offset":0,"limit":1024,"streams":["A","B"]}"#)
                .unwrap();
        assert_eq!(page.streams, ["A", "B"]);
        assert_eq!(page.total, 2);
        let none = stream_names(br#"{"total":0,"offset":0,"limit":1024,"streams":null}"#).unwrap();
        assert!(none.streams.is_empty());
        let err = api_error(
            br#"{"error":{"code":404,"err_code":10059,"description":"stream not found"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("stream not found"), "{err}");
        assert_eq!(percent_decode("p%40ss"), "p@ss");
    }

    #[test]
    fn the_summary_names_what_is_left_behind() {
        let c = Cleanup {
            dropped_databases: vec!["a".into(), "b".into()],
            deleted_streams: vec!["S".into()],
            left_behind: vec!["x: why".into()],
        };
        assert_eq!(
            c.summary(),
            "dropped 2 PostgreSQL databases, deleted 1 JetStream streams; left behind: x: why"
        );
    }

    /// Creates a stream of a made-up run on the real server and deletes it as a bench would.
    #[tokio::test]
    async fn deletes_the_streams_of_a_run_on_a_real_nats() {
        let Ok(url) = std::env::var("BAZAAR_TEST_NATS_URL") else {
            eprintln!("skipping: BAZAAR_TEST_NATS_URL is not set");
            return;
        };
        let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let e = External::new("postgres://127.0.0.1", &url, &run).unwrap();
        let stream = format!("{}ORDER", e.stream_prefix());
        let mut nats = NatsConn::connect(&url).await.unwrap();
        let created = nats
            .request(
                &format!("$JS.API.STREAM.CREATE.{stream}"),
                &serde_json::json!({
                    "name": stream, "subjects": [format!("bazaar.{}-order.>", e.namespace)],
                    "storage": "memory", "retention": "limits", "max_consumers": -1,
                    "max_msgs": -1, "max_bytes": -1, "max_age": 0, "num_replicas": 1,
                    "discard": "old"
                })
                .to_string(),
            )
            .await
            .unwrap();
        api_error(&created).unwrap();
        let deleted = delete_streams(&e).await.unwrap();
        assert_eq!(deleted, std::slice::from_ref(&stream));
        assert!(delete_streams(&e).await.unwrap().is_empty());
    }

    /// Creates a database of a made-up run on the real server and drops it as a bench would.
    #[tokio::test]
    async fn drops_the_databases_of_a_run_on_a_real_postgres() {
        let Ok(server) = std::env::var("BAZAAR_TEST_POSTGRES_URL") else {
            eprintln!("skipping: BAZAAR_TEST_POSTGRES_URL is not set");
            return;
        };
        let Some(psql) = super::super::super::process::find_on_path("psql") else {
            eprintln!("skipping: psql is not installed");
            return;
        };
        let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let e = External::new(&server, "nats://127.0.0.1", &run).unwrap();
        let name = format!("{}_order", e.database_prefix);
        psql_command(&psql, &e, &format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        assert_eq!(drop_databases(&e).await.unwrap(), [name]);
        assert!(drop_databases(&e).await.unwrap().is_empty());
    }
}
