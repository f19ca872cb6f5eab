//! What an instance of a service is, and the registry's wire types (shared with the registry
//! service so both sides agree on one definition).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One running copy of a service and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The service name, e.g. `catalog`.
    pub service: String,
    /// Unique within the service, e.g. a UUID chosen at start.
    pub instance_id: String,
    /// Where its HTTP port listens, `host:port`, e.g. `127.0.0.1:41234`.
    pub http_addr: String,
    /// Where its gRPC port listens, if it has one.
    #[serde(default)]
    pub grpc_addr: Option<String>,
    /// The version it runs (canary routing splits traffic by it).
    #[serde(default)]
    pub version: String,
    /// Free-form labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Instance {
    /// An instance with only the required fields set.
    pub fn new(
        service: impl Into<String>,
        instance_id: impl Into<String>,
        http_addr: impl Into<String>,
    ) -> Self {
        Instance {
            service: service.into(),
            instance_id: instance_id.into(),
            http_addr: http_addr.into(),
            grpc_addr: None,
            version: String::new(),
            metadata: BTreeMap::new(),
        }
    }
}

/// An instance as `GET /v1/instances` shows it: with its lease times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredInstance {
    /// The instance (its fields appear at the top level of the JSON object).
    #[serde(flatten)]
    pub instance: Instance,
    /// When it (last) registered, RFC 3339.
    pub registered_at: String,
    /// When its lease was last renewed (registration or heartbeat), RFC 3339.
    pub last_heartbeat_at: String,
}

/// The answer to `POST /v1/instances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    /// The lease lasts this long after each registration or heartbeat.
    pub lease_ttl_ms: u64,
    /// Heartbeat this often.
    pub heartbeat_ms: u64,
}

/// The answer to `GET /v1/services/{service}/instances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstances {
    /// Changes whenever the set changes; pass it back as `?index=` to long-poll.
    pub index: u64,
    /// Sorted by `instance_id`.
    pub instances: Vec<Instance>,
}

/// The answer to `GET /v1/instances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllInstances {
    /// The registry-wide index.
    pub index: u64,
    /// Sorted by service, then `instance_id`.
    pub instances: Vec<RegisteredInstance>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_default_when_absent() {
        let i: Instance = serde_json::from_str(
            r#"{"service":"catalog","instance_id":"a","http_addr":"127.0.0.1:1"}"#,
        )
        .unwrap();
        assert_eq!(i, Instance::new("catalog", "a", "127.0.0.1:1"));
    }

    #[test]
    fn registered_instance_is_a_flat_object() {
        let r = RegisteredInstance {
            instance: Instance::new("catalog", "a", "127.0.0.1:1"),
            registered_at: "2026-01-01T00:00:00Z".into(),
            last_heartbeat_at: "2026-01-01T00:00:01Z".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["service"], "catalog");
        assert_eq!(v["last_heartbeat_at"], "2026-01-01T00:00:01Z");
        assert_eq!(serde_json::from_value::<RegisteredInstance>(v).unwrap(), r);
    }
}
