//! `--record FILE`: every attempt of every request and the answer the client got, as JSON
//! lines, for later analysis (`bazaar chaos` checks its invariants against it).
//!
//! The first line is a [`Header`] (`"kind":"header"`), every other line an [`Attempt`]
//! (`"kind":"attempt"`). Lines are written by one task through a buffered writer, so the
//! requests never wait for the disk; the file is flushed and complete when the run returns.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::{io::AsyncWriteExt as _, sync::mpsc, task::JoinHandle};

use super::{mix::Scenario, retry::TransportError};

/// The kind of request an attempt belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `POST /api/v1/orders`.
    PlaceOrder,
    /// `POST /api/v1/orders/{id}/cancel`.
    Cancel,
    /// `GET /api/v1/products` (a page of the list, a category or a search).
    Browse,
    /// `GET /api/v1/products/{id}`.
    GetProduct,
    /// `GET /api/v1/orders`.
    ListOrders,
    /// `GET /api/v1/me/overview`.
    Overview,
    /// `POST /api/v1/users`.
    Register,
    /// `POST /api/v1/auth/token` (a new customer's login, or a login again after a 401).
    Token,
    /// `POST /api/v1/inventory/{sku}/restock` (admin).
    Restock,
}

impl Op {
    /// Every operation, in the order reports list them.
    pub const ALL: [Op; 9] = [
        Op::PlaceOrder,
        Op::Cancel,
        Op::Browse,
        Op::GetProduct,
        Op::ListOrders,
        Op::Overview,
        Op::Register,
        Op::Token,
        Op::Restock,
    ];

    /// The name in reports and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::PlaceOrder => "place_order",
            Op::Cancel => "cancel",
            Op::Browse => "browse",
            Op::GetProduct => "get_product",
            Op::ListOrders => "list_orders",
            Op::Overview => "overview",
            Op::Register => "register",
            Op::Token => "token",
            Op::Restock => "restock",
        }
    }
}

/// The first line of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub seed: u64,
    /// The base URL the load went to.
    pub target: String,
    /// Scenario starts per second.
    pub rate: f64,
    /// Unix time in ms of t = 0 of the schedule (every `t_ms` is relative to it).
    pub started_unix_ms: u64,
    /// The planned length of the schedule, in seconds.
    #[serde(default)]
    pub duration_s: f64,
    /// The mix, as `name=weight,…`.
    #[serde(default)]
    pub mix: String,
}

/// One line of an order as the load generator placed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub product_id: String,
    pub sku: String,
    pub quantity: u32,
}

/// One attempt of one request, and what the client got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// When the request was due (not this attempt: every attempt of a request shares it),
    /// in ms after t = 0.
    pub t_ms: f64,
    pub op: Op,
    pub scenario: Scenario,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Whether this attempt's answer is the request's final answer (no attempt follows).
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Why there was no answer.
    pub error: Option<TransportError>,
    /// From when the request was due to this attempt's answer (retries and waits included).
    pub latency_ms: f64,
    /// The user id the request was sent for (`None`: anonymous or the admin).
    pub user: Option<String>,
    /// The `Idempotency-Key` (placements).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The order: from a placement's 2xx answer, or the cancelled order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The card token of a placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The shipping address's postal code of a placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// The lines of a placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Item>>,
    /// The SKU of a restock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The quantity of a restock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    /// Whether a placement's answer carried `Idempotent-Replayed: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
}

/// A line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Line {
    Header(Header),
    Attempt(Attempt),
    /// A kind this version does not know: skipped when reading.
    #[serde(other)]
    Unknown,
}

/// Where attempts go while a run records; cheap to clone.
#[derive(Debug, Clone)]
pub struct RecordSink {
    tx: mpsc::UnboundedSender<Attempt>,
}

impl RecordSink {
    /// Queues one attempt for the writer.
    pub fn send(&self, attempt: Attempt) {
        // The writer only stops after every sink is gone.
        let _ = self.tx.send(attempt);
    }
}

/// The task that writes a record; [`RecordWriter::finish`] waits for it.
pub struct RecordWriter {
    path: PathBuf,
    task: JoinHandle<anyhow::Result<u64>>,
}

/// Creates (truncates) `path`, writes the header and starts the writer task.
pub async fn start(path: &Path, header: &Header) -> anyhow::Result<(RecordSink, RecordWriter)> {
    let file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("cannot create the record file {}", path.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut first = serde_json::to_vec(&Line::Header(header.clone()))?;
    first.push(b'\n');
    out.write_all(&first)
        .await
        .with_context(|| format!("cannot write to {}", path.display()))?;
    // On disk at once: `bazaar chaos` reads the header to learn when t = 0 is.
    out.flush()
        .await
        .with_context(|| format!("cannot write to {}", path.display()))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Attempt>();
    let task = tokio::spawn(async move {
        let mut written = 0u64;
        let mut failed: Option<anyhow::Error> = None;
        let mut buf = Vec::with_capacity(512);
        while let Some(attempt) = rx.recv().await {
            if failed.is_some() {
                // Keep draining, so senders never pile up; the error is reported at the end.
                continue;
            }
            buf.clear();
            let line = Line::Attempt(attempt);
            let result = match serde_json::to_writer(&mut buf, &line) {
                Ok(()) => {
                    buf.push(b'\n');
                    out.write_all(&buf).await.map_err(anyhow::Error::from)
                }
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => written += 1,
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        out.flush().await?;
        out.into_inner().sync_all().await?;
        Ok(written)
    });
    Ok((
        RecordSink { tx },
        RecordWriter {
            path: path.to_owned(),
            task,
        },
    ))
}

impl RecordWriter {
    /// Waits until every queued attempt is written and the file flushed; returns how many
    /// attempts were written. Every [`RecordSink`] must be dropped first.
    pub async fn finish(self) -> anyhow::Result<u64> {
        let path = self.path;
        self.task
            .await
            .context("the record writer stopped")?
            .with_context(|| format!("cannot write the record {}", path.display()))
    }
}

/// Reads a record written by `bazaar load --record`: its header and every attempt, in the
/// order they were written (the order answers arrived, not the order requests were due).
#[allow(dead_code, reason = "the record's reader for `bazaar chaos`")]
pub fn read_records(path: &Path) -> anyhow::Result<(Header, Vec<Attempt>)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the record {}", path.display()))?;
    let mut header = None;
    let mut attempts = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not a record line", path.display(), n + 1))?;
        match parsed {
            Line::Header(h) if header.is_none() => header = Some(h),
            Line::Header(_) => anyhow::bail!("{} line {}: a second header", path.display(), n + 1),
            Line::Attempt(_) if header.is_none() => {
                anyhow::bail!("{}: the first line is not a header", path.display())
            }
            Line::Attempt(a) => attempts.push(a),
            Line::Unknown => {}
        }
    }
    let header = header.with_context(|| format!("{}: no header line", path.display()))?;
    Ok((header, attempts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            seed: 7,
            target: "http://127.0.0.1:8080".into(),
            rate: 20.0,
            started_unix_ms: 1_700_000_000_123,
            duration_s: 5.0,
            mix: "browse=1".into(),
        }
    }

    fn placement() -> Attempt {
        Attempt {
            t_ms: 50.0,
            op: Op::PlaceOrder,
            scenario: Scenario::OrderShipFail,
            attempt: 2,
            is_final: true,
            status: Some(201),
            error: None,
            latency_ms: 312.5,
            user: Some("0190f3c2-0000-7000-8000-000000000001".into()),
            key: Some("k-1".into()),
            order_id: Some("0190f3c2-0000-7000-8000-0000000000aa".into()),
            token: Some("tok_visa".into()),
            postal_code: Some("00000".into()),
            items: Some(vec![Item {
                product_id: "p-1".into(),
                sku: "SKU-1".into(),
                quantity: 2,
            }]),
            sku: None,
            quantity: None,
            replayed: Some(true),
        }
    }

    fn timeout() -> Attempt {
        Attempt {
            t_ms: 100.25,
            op: Op::Restock,
            scenario: Scenario::Restock,
            attempt: 1,
            is_final: true,
            status: None,
            error: Some(TransportError::Timeout),
            latency_ms: 10_000.0,
            user: None,
            key: None,
            order_id: None,
            token: None,
            postal_code: None,
            items: None,
            sku: Some("SKU-2".into()),
            quantity: Some(25),
            replayed: None,
        }
    }

    #[tokio::test]
    async fn a_record_reads_back_as_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let (sink, writer) = start(&path, &header()).await.unwrap();
        sink.send(placement());
        sink.clone().send(timeout());
        drop(sink);
        assert_eq!(writer.finish().await.unwrap(), 2);

        let (h, attempts) = read_records(&path).unwrap();
        assert_eq!(h, header());
        assert_eq!(attempts, vec![placement(), timeout()]);
    }

    #[tokio::test]
    async fn record_lines_have_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let (sink, writer) = start(&path, &header()).await.unwrap();
        sink.send(placement());
        sink.send(timeout());
        drop(sink);
        writer.finish().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["kind"], "header");
        assert_eq!(lines[0]["started_unix_ms"], 1_700_000_000_123u64);
        assert_eq!(lines[1]["kind"], "attempt");
        assert_eq!(lines[1]["op"], "place_order");
        assert_eq!(lines[1]["scenario"], "order_ship_fail");
        assert_eq!(lines[1]["final"], true);
        assert_eq!(lines[1]["items"][0]["quantity"], 2);
        assert_eq!(lines[1]["replayed"], true);
        assert!(
            lines[1].get("sku").is_none(),
            "fields that do not apply are left out"
        );
        assert_eq!(lines[2]["status"], serde_json::Value::Null);
        assert_eq!(lines[2]["error"], "timeout");
        assert_eq!(lines[2]["user"], serde_json::Value::Null);
        assert_eq!(lines[2]["quantity"], 25);
        assert!(lines[2].get("key").is_none());
    }

    #[test]
    fn a_record_without_a_header_or_with_a_bad_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        let attempt = serde_json::to_string(&Line::Attempt(timeout())).unwrap();
        std::fs::write(&path, format!("{attempt}\n")).unwrap();
        let err = read_records(&path).unwrap_err().to_string();
        assert!(err.contains("not a header"), "{err}");
        let head = serde_json::to_string(&Line::Header(header())).unwrap();
        std::fs::write(&path, format!("{head}\n{{\"kind\":\"attempt\"}}\n")).unwrap();
        let err = format!("{:#}", read_records(&path).unwrap_err());
        assert!(err.contains("line 2"), "{err}");
        std::fs::write(&path, "").unwrap();
        assert!(read_records(&path).is_err());
        // Kinds a later version adds are skipped.
        std::fs::write(
            &path,
            format!("{head}\n{{\"kind\":\"drop\",\"t_ms\":1}}\n{attempt}\n"),
        )
        .unwrap();
        assert_eq!(read_records(&path).unwrap().1.len(), 1);
    }
}
