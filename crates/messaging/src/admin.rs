//! The dead-letter admin routes: list a service's dead letters, redrive one.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use bazaar_runtime::{AdminUser, Json, Problem, Query};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{
    bus::Inner,
    consumer::{inbox_insert, refresh_dead_letter_gauge, truncate},
    envelope::Envelope,
    handler::HandlerError,
    metrics::{self, Outcome},
};

/// The most dead letters one page lists.
const MAX_PAGE: i64 = 100;
/// Dead letters per page by default.
const DEFAULT_PAGE: i64 = 20;

/// A dead letter as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeadLetterView {
    id: String,
    subscription: String,
    event_id: String,
    #[serde(rename = "type")]
    ty: String,
    error: String,
    attempts: i64,
    status: String,
    created_at: String,
    updated_at: String,
}

struct Stored {
    view: DeadLetterView,
    envelope: String,
}

const COLUMNS: &str =
    "id, subscription, event_id, type, error, attempts, status, created_us, updated_us, envelope";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        view: DeadLetterView {
            id: r.try_get(0)?,
            subscription: r.try_get(1)?,
            event_id: r.try_get(2)?,
            ty: r.try_get(3)?,
            error: r.try_get(4)?,
            attempts: r.try_get(5)?,
            status: r.try_get(6)?,
            created_at: bazaar_runtime::time::rfc3339_micros(r.try_get(7)?),
            updated_at: bazaar_runtime::time::rfc3339_micros(r.try_get(8)?),
        },
        envelope: r.try_get(9)?,
    })
}

/// The query of `GET /admin/dead-letters` (all strings: each is checked with its own message).
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    service: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize)]
struct Page {
    items: Vec<DeadLetterView>,
    next_cursor: Option<String>,
}

/// `GET /admin/dead-letters?service=&status=&limit=&cursor=`: newest first.
pub(crate) async fn list(
    State(inner): State<Arc<Inner>>,
    _admin: AdminUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let limit = match q.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| Problem::malformed("Bad query parameter limit: must be 1–100."))?,
    };
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s @ ("dead" | "redriven")) => Some(s),
        Some(_) => {
            return Err(Problem::malformed(
                "Bad query parameter status: must be dead or redriven.",
            ))
        }
    };
    let cursor = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            uuid::Uuid::parse_str(c)
                .map_err(|_| Problem::malformed("Bad query parameter cursor."))?
                .to_string(),
        ),
    };
    let empty = Page {
        items: Vec::new(),
        next_cursor: None,
    };
    if q.service
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s != inner.service)
    {
        return Ok(Json(empty).into_response());
    }
    let mut sql = format!("SELECT {COLUMNS} FROM msg_dead_letters WHERE 1 = 1");
    let mut n = 1;
    if status.is_some() {
        sql.push_str(&format!(" AND status = ${n}"));
        n += 1;
    }
    if cursor.is_some() {
        sql.push_str(&format!(" AND id < ${n}"));
        n += 1;
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${n}"));
    let mut query = sqlx::query(&sql);
    if let Some(s) = status {
        query = query.bind(s);
    }
    if let Some(c) = &cursor {
        query = query.bind(c);
    }
    let rows = query
        .bind(limit + 1)
        .fetch_all(inner.db.reader())
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut items = rows
        .iter()
        .map(|r| from_row(r).map(|s| s.view))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Problem::internal(&e))?;
    let next_cursor = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        items.truncate(usize::try_from(limit).unwrap_or(0));
        items.last().map(|d| d.id.clone())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }).into_response())
}

async fn load(inner: &Inner, id: &str) -> Result<Option<Stored>, Problem> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM msg_dead_letters WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(inner.db.reader())
    .await
    .and_then(|r| r.as_ref().map(from_row).transpose())
    .map_err(|e| Problem::internal(&e))
}

/// `POST /admin/dead-letters/{service}/{id}/redrive`: runs the subscription's handler on the
/// stored event now. Already processed (in the inbox) → marked redriven without running it;
/// the handler fails again → 409 and the dead letter stays, with one more attempt counted.
pub(crate) async fn redrive(
    State(inner): State<Arc<Inner>>,
    _admin: AdminUser,
    Path((service, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    if service != inner.service || uuid::Uuid::parse_str(&id).is_err() {
        return Err(Problem::not_found());
    }
    let stored = load(&inner, &id).await?.ok_or_else(Problem::not_found)?;
    if stored.view.status == "redriven" {
        return Ok(Json(stored.view).into_response());
    }
    let sub = stored.view.subscription.clone();
    let handler = inner.handler(&sub).ok_or_else(|| {
        Problem::conflict("No handler for this dead letter's subscription runs in this instance.")
    })?;
    let outcome = match Envelope::parse(&stored.envelope) {
        Ok(env) => run_once(&inner, &id, &sub, handler.as_ref(), &env).await,
        Err(e) => Err(HandlerError::Permanent(e.into())),
    };
    let now = bazaar_runtime::time::now_micros();
    match outcome {
        Ok(outcome) => {
            metrics::handled(inner.service, &sub, outcome);
            tracing::info!(subscription = %sub, dead_letter = %id, event_id = %stored.view.event_id, "Dead letter redriven.");
        }
        Err(err) => {
            sqlx::query(
                "UPDATE msg_dead_letters SET attempts = attempts + 1, error = $1, updated_us = $2 \
                 WHERE id = $3 AND status = 'dead'",
            )
            .bind(truncate(&err.to_string(), 4000))
            .bind(now)
            .bind(&id)
            .execute(inner.db.writer())
            .await
            .map_err(|e| Problem::internal(&e))?;
            tracing::warn!(subscription = %sub, dead_letter = %id, error = %err, "Redriven dead letter failed again.");
            return Err(Problem::conflict(
                "the handler failed again; the dead letter is kept",
            ));
        }
    }
    refresh_dead_letter_gauge(&inner, &sub).await;
    let stored = load(&inner, &id).await?.ok_or_else(Problem::not_found)?;
    Ok(Json(stored.view).into_response())
}

/// Inbox insert + handler + status `redriven`, in one transaction.
async fn run_once(
    inner: &Inner,
    dead_letter_id: &str,
    sub: &str,
    handler: &dyn crate::handler::Handler,
    env: &Envelope,
) -> Result<Outcome, HandlerError> {
    let mut tx = inner.db.begin().await?;
    let fresh = inbox_insert(&mut tx, sub, &env.id).await?;
    if fresh {
        bazaar_runtime::context::scope(env.consumer_context(), handler.handle(&mut tx, env))
            .await?;
    }
    sqlx::query(
        "UPDATE msg_dead_letters SET status = 'redriven', updated_us = $1 \
         WHERE id = $2",
    )
    .bind(bazaar_runtime::time::now_micros())
    .bind(dead_letter_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if fresh {
        inner.relay_wake.notify_one();
    }
    Ok(if fresh {
        Outcome::Processed
    } else {
        Outcome::Duplicate
    })
}
