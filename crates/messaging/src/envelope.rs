//! The CloudEvents 1.0 JSON envelope every event travels in.

use bazaar_contracts::events::EventPayload;
use bazaar_runtime::context::{self, RequestContext};
use serde::{Deserialize, Serialize};

use crate::handler::HandlerError;

/// The CloudEvents version of every envelope.
pub const SPECVERSION: &str = "1.0";

/// The media type of every event's `data`.
pub const DATACONTENTTYPE: &str = "application/json";

/// One event as it is stored in the outbox and delivered: CloudEvents 1.0 in JSON form, with
/// the W3C `traceparent` extension so one trace follows the event to every consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always `"1.0"`.
    pub specversion: String,
    /// The event id, a UUIDv7: unique per event, the inbox's deduplication key.
    pub id: String,
    /// `/bazaar/<service>` of the producer.
    pub source: String,
    /// The event type, `bazaar.<service>.<event>.v<n>`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The id of what the event is about (order id, product id, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When it was published, RFC 3339 UTC.
    pub time: String,
    /// Always `application/json`.
    #[serde(default = "default_datacontenttype")]
    pub datacontenttype: String,
    /// The trace context of the request that published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The payload.
    pub data: serde_json::Value,
}

fn default_datacontenttype() -> String {
    DATACONTENTTYPE.to_owned()
}

/// Why a JSON document is not an acceptable envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, or a required attribute is missing or of the wrong type.
    #[error("not a CloudEvents envelope: {0}")]
    Json(#[from] serde_json::Error),
    /// A CloudEvents version other than 1.0.
    #[error("unsupported CloudEvents specversion {0:?}")]
    Specversion(String),
    /// A required attribute is empty.
    #[error("the CloudEvents attribute {0} is empty")]
    Empty(&'static str),
}

impl Envelope {
    /// Wraps `event` in a new envelope: a fresh UUIDv7 id, the current time, and the trace
    /// context of the request being served (if any).
    pub fn new<E: EventPayload>(event: &E) -> Result<Envelope, serde_json::Error> {
        let now = bazaar_runtime::time::now_micros();
        Ok(Envelope {
            specversion: SPECVERSION.to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            source: format!("/bazaar/{}", E::SERVICE),
            ty: E::TYPE.to_owned(),
            subject: Some(event.subject()),
            time: bazaar_runtime::time::rfc3339_micros(now),
            datacontenttype: DATACONTENTTYPE.to_owned(),
            traceparent: context::with_current(RequestContext::traceparent),
            data: serde_json::to_value(event)?,
        })
    }

    /// Parses and checks a JSON envelope.
    pub fn parse(json: &str) -> Result<Envelope, EnvelopeError> {
        Self::from_value(serde_json::from_str(json)?)
    }

    /// Checks a JSON value as an envelope.
    pub fn from_value(value: serde_json::Value) -> Result<Envelope, EnvelopeError> {
        let env: Envelope = serde_json::from_value(value)?;
        env.check()?;
        Ok(env)
    }

    fn check(&self) -> Result<(), EnvelopeError> {
        if self.specversion != SPECVERSION {
            return Err(EnvelopeError::Specversion(self.specversion.clone()));
        }
        for (name, value) in [
            ("id", &self.id),
            ("source", &self.source),
            ("type", &self.ty),
        ] {
            if value.is_empty() {
                return Err(EnvelopeError::Empty(name));
            }
        }
        Ok(())
    }

    /// The JSON text of the envelope.
    pub fn to_json(&self) -> String {
        // Serializing strings and a `Value` cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes the payload as `E`. An event of another type, or a payload that does not
    /// decode, is a [`HandlerError::Permanent`]: retrying cannot fix it.
    pub fn data<E: EventPayload>(&self) -> Result<E, HandlerError> {
        if self.ty != E::TYPE {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "expected an event of type {}, got {}",
                E::TYPE,
                self.ty
            )));
        }
        serde_json::from_value(self.data.clone()).map_err(|e| {
            HandlerError::Permanent(anyhow::Error::new(e).context(format!(
                "the data of event {} does not decode as {}",
                self.id,
                E::TYPE
            )))
        })
    }

    /// The context a consumer handles this event in: the producer's trace continues with a
    /// new span, and the request id is the event id (so logs of one event line up).
    pub fn consumer_context(&self) -> RequestContext {
        let parent = self
            .traceparent
            .as_deref()
            .and_then(context::parse_traceparent);
        let (trace_id, parent_span_id, flags) = match parent {
            Some(p) => (p.trace_id, Some(p.span_id), p.flags),
            None => (context::random_hex(16), None, 1),
        };
        let request_id = if context::is_valid_request_id(&self.id) {
            self.id.clone()
        } else {
            context::new_request_id()
        };
        RequestContext {
            request_id,
            trace_id,
            span_id: context::random_hex(8),
            parent_span_id,
            flags,
            path: format!("/events/{}", self.ty),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(data: serde_json::Value, traceparent: Option<String>) -> Envelope {
        Envelope {
            specversion: SPECVERSION.into(),
            id: uuid::Uuid::now_v7().to_string(),
            source: "/bazaar/catalog".into(),
            ty: "bazaar.catalog.product_created.v1".into(),
            subject: Some("p1".into()),
            time: "2026-01-01T00:00:00Z".into(),
            datacontenttype: DATACONTENTTYPE.into(),
            traceparent,
            data,
        }
    }

    #[test]
    fn serializes_the_cloudevents_attribute_names() {
        let env = sample(serde_json::json!({"a": 1}), None);
        let v: serde_json::Value = serde_json::from_str(&env.to_json()).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "bazaar.catalog.product_created.v1");
        assert_eq!(v["datacontenttype"], "application/json");
        assert!(v.get("traceparent").is_none());
        assert!(v.get("ty").is_none());
    }

    #[test]
    fn refuses_other_spec_versions_and_empty_ids() {
        let mut env = sample(serde_json::json!(null), None);
        env.specversion = "0.3".into();
        assert!(matches!(
            Envelope::parse(&env.to_json()),
            Err(EnvelopeError::Specversion(_))
        ));
        let mut env = sample(serde_json::json!(null), None);
        env.id = String::new();
        assert!(matches!(
            Envelope::parse(&env.to_json()),
            Err(EnvelopeError::Empty("id"))
        ));
        assert!(Envelope::parse("[]").is_err());
    }

    #[test]
    fn the_consumer_context_continues_the_producers_trace() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let env = sample(serde_json::json!({}), Some(tp.into()));
        let ctx = env.consumer_context();
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(ctx.request_id, env.id);
        let env = sample(serde_json::json!({}), Some("garbage".into()));
        assert!(env.consumer_context().parent_span_id.is_none());
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn envelopes_round_trip_through_json(
            data in json_value(),
            subject in proptest::option::of(".{1,30}"),
            trace in proptest::option::of("[0-9a-f]{31}[1-9a-f]"),
        ) {
            let mut env = sample(data, trace.map(|t| format!("00-{t}-00f067aa0ba902b7-01")));
            env.subject = subject;
            let back = Envelope::parse(&env.to_json()).unwrap();
            prop_assert_eq!(back, env);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,200}") {
            let _ = Envelope::parse(&s);
        }
    }
}
