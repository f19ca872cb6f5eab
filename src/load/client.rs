//! The HTTP client of the load generator: sends one request with the retry policy of
//! [`super::retry`], logs a user in again after a 401, and counts and records every attempt.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use reqwest::{header, Method};
use serde::Deserialize;
use serde_json::json;

use super::{
    mix::Scenario,
    record::{Attempt, Op, RecordSink},
    retry::{decide, with_jitter, Decision, Outcome, TransportError},
    stats::Aggregator,
};

/// A customer (or the admin) the load generator acts as.
#[derive(Debug)]
pub struct Account {
    /// The user id, recorded with each request (`None` for the admin).
    pub id: Option<String>,
    email: String,
    password: String,
    token: Mutex<Arc<str>>,
    /// Held while logging in again, so one 401 storm causes one login.
    relogin: tokio::sync::Mutex<()>,
}

impl Account {
    pub fn new(id: Option<String>, email: String, password: String, token: String) -> Account {
        Account {
            id,
            email,
            password,
            token: Mutex::new(token.into()),
            relogin: tokio::sync::Mutex::new(()),
        }
    }

    /// The current access token.
    pub fn token(&self) -> Arc<str> {
        match self.token.lock() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_token(&self, token: &str) {
        match self.token.lock() {
            Ok(mut t) => *t = token.into(),
            Err(poisoned) => *poisoned.into_inner() = token.into(),
        }
    }

    /// The body of `POST /api/v1/auth/token` for this account.
    pub fn login_body(&self) -> Bytes {
        login_body(&self.email, &self.password)
    }
}

/// `{"email": …, "password": …}`.
pub fn login_body(email: &str, password: &str) -> Bytes {
    Bytes::from(json!({"email": email, "password": password}).to_string())
}

/// The access token of a login answer.
pub fn access_token(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct TokenAnswer {
        access_token: String,
    }
    serde_json::from_slice::<TokenAnswer>(body)
        .ok()
        .map(|t| t.access_token)
}

/// A string field of a JSON object answer (`id`, `next_cursor`…).
pub fn json_str(body: &[u8], field: &str) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(field)?
        .as_str()
        .map(str::to_owned)
}

/// One request to send, retried as a whole (the body bytes and key never change).
pub struct Request<'a> {
    pub op: Op,
    pub method: Method,
    /// Path and query, from `/api/v1/…`.
    pub path: String,
    pub body: Option<Bytes>,
    pub idempotency_key: Option<String>,
    /// Whose token goes in `Authorization` (none: anonymous).
    pub auth: Option<&'a Account>,
    /// The fields of the record that describe the request (key, items, sku…); the client
    /// fills in the rest for each attempt.
    pub details: Attempt,
}

impl<'a> Request<'a> {
    /// A request with no body, key or record details.
    pub fn new(op: Op, method: Method, path: String, auth: Option<&'a Account>) -> Request<'a> {
        Request {
            op,
            method,
            path,
            body: None,
            idempotency_key: None,
            auth,
            details: blank_attempt(op, auth.and_then(|a| a.id.clone())),
        }
    }
}

/// An attempt with only `op` and `user` set.
pub fn blank_attempt(op: Op, user: Option<String>) -> Attempt {
    Attempt {
        t_ms: 0.0,
        op,
        scenario: Scenario::Browse,
        attempt: 1,
        is_final: true,
        status: None,
        error: None,
        latency_ms: 0.0,
        user,
        key: None,
        order_id: None,
        token: None,
        postal_code: None,
        items: None,
        sku: None,
        quantity: None,
        replayed: None,
    }
}

/// The final answer to a request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `None`: no HTTP answer (a transport error).
    pub status: Option<u16>,
    pub body: Bytes,
    /// When it arrived: the next step of a scenario is due then.
    pub at: Instant,
}

impl Answer {
    /// A 2xx answer.
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What came back for one attempt.
struct Response {
    status: u16,
    retry_after: Option<Duration>,
    replayed: bool,
    body: Bytes,
}

/// Sends requests to one base URL and accounts for every attempt.
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// t = 0 of the schedule: `t_ms` of the record is measured from it.
    t0: Instant,
    stats: Arc<Mutex<Aggregator>>,
    sink: Option<RecordSink>,
}

impl Client {
    pub fn new(
        http: reqwest::Client,
        base: String,
        t0: Instant,
        stats: Arc<Mutex<Aggregator>>,
        sink: Option<RecordSink>,
    ) -> Client {
        Client {
            http,
            base,
            t0,
            stats,
            sink,
        }
    }

    /// Sends `req`, due at `due`, until it has a final answer; every attempt is counted
    /// and recorded with its latency from `due`.
    pub async fn execute(&self, scenario: Scenario, req: &Request<'_>, due: Instant) -> Answer {
        let t_ms = due.saturating_duration_since(self.t0).as_secs_f64() * 1000.0;
        let mut attempt = 1;
        let mut may_relogin = req.auth.is_some();
        loop {
            let token = req.auth.map(Account::token);
            let result = self.send(req, token.as_deref()).await;
            let at = Instant::now();
            let outcome = match &result {
                Ok(r) => Outcome::Status(r.status, r.retry_after),
                Err(e) => Outcome::Transport(*e),
            };
            let decision = decide(req.op, outcome, attempt, may_relogin);
            let mut record = req.details.clone();
            record.t_ms = t_ms;
            record.scenario = scenario;
            record.attempt = attempt;
            record.is_final = decision == Decision::Final;
            record.latency_ms = at.saturating_duration_since(due).as_secs_f64() * 1000.0;
            match &result {
                Ok(r) => {
                    record.status = Some(r.status);
                    let ok = (200..300).contains(&r.status);
                    match req.op {
                        Op::PlaceOrder => {
                            record.replayed = Some(r.replayed);
                            if ok {
                                record.order_id = json_str(&r.body, "id");
                            }
                        }
                        Op::Register if ok => record.user = json_str(&r.body, "id"),
                        _ => {}
                    }
                }
                Err(e) => record.error = Some(*e),
            }
            self.account(record);
            match decision {
                Decision::Final => {
                    let (status, body) = match result {
                        Ok(r) => (Some(r.status), r.body),
                        Err(_) => (None, Bytes::new()),
                    };
                    return Answer { status, body, at };
                }
                Decision::Retry(delay) => {
                    let delay = with_jitter(delay, &mut rand::thread_rng());
                    tokio::time::sleep(delay).await;
                }
                Decision::Relogin => {
                    may_relogin = false;
                    if let (Some(account), Some(stale)) = (req.auth, token) {
                        Box::pin(self.relogin(scenario, account, &stale)).await;
                    }
                }
            }
            attempt += 1;
        }
    }

    /// Logs `account` in again unless another request already did since `stale` was used.
    async fn relogin(&self, scenario: Scenario, account: &Account, stale: &str) {
        let _one_at_a_time = account.relogin.lock().await;
        if *account.token() != *stale {
            return;
        }
        let mut req = Request::new(Op::Token, Method::POST, "/api/v1/auth/token".into(), None);
        req.body = Some(account.login_body());
        req.details.user = account.id.clone();
        let answer = self.execute(scenario, &req, Instant::now()).await;
        if answer.status == Some(200) {
            if let Some(token) = access_token(&answer.body) {
                account.set_token(&token);
            }
        }
    }

    fn account(&self, attempt: Attempt) {
        match self.stats.lock() {
            Ok(mut s) => s.add(&attempt),
            Err(poisoned) => poisoned.into_inner().add(&attempt),
        }
        if let Some(sink) = &self.sink {
            sink.send(attempt);
        }
    }

    async fn send(
        &self,
        req: &Request<'_>,
        token: Option<&str>,
    ) -> Result<Response, TransportError> {
        let url = format!("{}{}", self.base, req.path);
        let mut builder = self.http.request(req.method.clone(), url);
        if let Some(body) = &req.body {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(key) = &req.idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        let response = builder.send().await.map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let body = response.bytes().await.map_err(|e| classify(&e))?;
        Ok(Response {
            status,
            retry_after,
            replayed,
            body,
        })
    }
}

/// Names a failed request: `connect` only when it is known not to have been sent.
pub fn classify(e: &reqwest::Error) -> TransportError {
    if e.is_connect() {
        return TransportError::Connect;
    }
    if e.is_timeout() {
        return TransportError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused => return TransportError::Connect,
                K::TimedOut => return TransportError::Timeout,
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                    return TransportError::Reset
                }
                _ => {}
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return TransportError::Reset;
            }
            if h.is_timeout() {
                return TransportError::Timeout;
            }
        }
        source = err.source();
    }
    TransportError::Other
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_answers() {
        assert_eq!(
            access_token(br#"{"access_token":"abc","token_type":"Bearer","expires_in":900}"#),
            Some("abc".into())
        );
        assert_eq!(access_token(b"{}"), None);
        assert_eq!(
            json_str(br#"{"id":"o-1","status":"pending"}"#, "id"),
            Some("o-1".into())
        );
        assert_eq!(json_str(br#"{"next_cursor":null}"#, "next_cursor"), None);
        assert_eq!(json_str(b"<html>", "id"), None);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The listener is closed again: nothing listens on the port now.
        let err = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(classify(&err), TransportError::Connect);
    }

    #[tokio::test]
    async fn a_connection_closed_without_an_answer_is_a_reset() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::AsyncReadExt as _;
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                drop(socket);
            }
        });
        let err = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("http://{addr}/"))
            .body("{}")
            .send()
            .await
            .unwrap_err();
        assert_eq!(classify(&err), TransportError::Reset, "{err:?}");
    }

    #[tokio::test]
    async fn no_answer_in_time_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let err = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(classify(&err), TransportError::Timeout);
    }
}
