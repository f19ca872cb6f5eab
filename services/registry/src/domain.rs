//! The registry's rules: what a valid instance is and how leases are timed. No I/O.

use std::{net::SocketAddr, time::Duration};

use bazaar_discovery::Instance;
use bazaar_runtime::FieldError;

/// The lease TTL unless configured.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// Shortest accepted TTL: heartbeats come every TTL / 3, and less than 100 ms between them is
/// load for nothing.
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(300);

/// Longest accepted TTL: beyond it a crashed instance would linger for too long.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3600);

/// Floor on the advertised heartbeat interval.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

const MAX_SERVICE_LEN: usize = 63;
const MAX_INSTANCE_ID_LEN: usize = 128;
const MAX_ADDR_LEN: usize = 261; // 253-character host name, ':' and a port
const MAX_VERSION_LEN: usize = 64;
const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_KEY_LEN: usize = 64;
const MAX_METADATA_VALUE_LEN: usize = 256;

/// How often an instance should heartbeat: three chances per lease, at least 100 ms apart.
pub fn heartbeat_interval(ttl: Duration) -> Duration {
    (ttl / 3).max(MIN_HEARTBEAT)
}

/// How often the reaper looks for expired leases: a quarter of the TTL, 10–500 ms.
pub fn reap_period(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(10), Duration::from_millis(500))
}

/// Every rule `instance` breaks, each with the JSON pointer of the field.
pub fn validate(instance: &Instance) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if !is_service_name(&instance.service) {
        errors.push(FieldError::new(
            "/service",
            "must be 1-63 characters: a lowercase letter, then lowercase letters, digits or '-'",
        ));
    }
    if !is_instance_id(&instance.instance_id) {
        errors.push(FieldError::new(
            "/instance_id",
            "must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
        ));
    }
    if !is_host_port(&instance.http_addr) {
        errors.push(FieldError::new(
            "/http_addr",
            "must be host:port, e.g. 127.0.0.1:8081",
        ));
    }
    if let Some(grpc) = &instance.grpc_addr {
        if !is_host_port(grpc) {
            errors.push(FieldError::new(
                "/grpc_addr",
                "must be host:port, e.g. 127.0.0.1:9081",
            ));
        }
    }
    if instance.version.chars().count() > MAX_VERSION_LEN
        || instance.version.chars().any(char::is_control)
    {
        errors.push(FieldError::new(
            "/version",
            "must be at most 64 characters, without control characters",
        ));
    }
    if instance.metadata.len() > MAX_METADATA_ENTRIES {
        errors.push(FieldError::new("/metadata", "must have at most 32 entries"));
    } else {
        for (key, value) in &instance.metadata {
            let pointer = format!("/metadata/{}", key.replace('~', "~0").replace('/', "~1"));
            if !is_metadata_key(key) {
                errors.push(FieldError::new(
                    pointer,
                    "keys must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '/' or '-'",
                ));
            } else if value.chars().count() > MAX_METADATA_VALUE_LEN
                || value.chars().any(char::is_control)
            {
                errors.push(FieldError::new(
                    pointer,
                    "values must be at most 256 characters, without control characters",
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// `[a-z][a-z0-9-]{0,62}`.
pub fn is_service_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.len() <= MAX_SERVICE_LEN
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// 1–128 characters of `[A-Za-z0-9._-]`.
pub fn is_instance_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_INSTANCE_ID_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `host:port`: an IPv4 address, a bracketed IPv6 address or a DNS name, and a port 1–65535.
pub fn is_host_port(s: &str) -> bool {
    if s.len() > MAX_ADDR_LEN {
        return false;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.chars().all(|c| c.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    if !port_ok {
        return false;
    }
    if host.starts_with('[') {
        return s.parse::<SocketAddr>().is_ok();
    }
    is_dns_name(host)
}

/// Letters, digits and '-' in dot-separated labels of 1–63 characters, not starting or ending
/// with '-'; IPv4 addresses are such names too.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn is_metadata_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_METADATA_KEY_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pointers(i: &Instance) -> Vec<String> {
        validate(i)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.pointer)
            .collect()
    }

    #[test]
    fn a_plain_instance_is_valid() {
        let mut i = Instance::new(
            "order-history",
            "0190a6f2-7c3e-7d4b-9a8e-0d3c2b1a0f9e",
            "127.0.0.1:41234",
        );
        i.grpc_addr = Some("[::1]:9000".into());
        i.version = "1.2.3".into();
        i.metadata.insert("zone".into(), "a".into());
        assert_eq!(validate(&i), Ok(()));
        assert_eq!(
            validate(&Instance::new(
                "a",
                "x",
                "identity.bazaar.svc.cluster.local:80"
            )),
            Ok(())
        );
    }

    #[test]
    fn service_names_follow_the_pattern() {
        for good in ["a", "catalog", "order-history", "s3", &"a".repeat(63)] {
            assert!(is_service_name(good), "{good}");
        }
        for bad in [
            "",
            "Catalog",
            "1st",
            "-a",
            "a_b",
            "a.b",
            "ä",
            &"a".repeat(64),
        ] {
            assert!(!is_service_name(bad), "{bad}");
        }
    }

    #[test]
    fn instance_ids_follow_the_pattern() {
        assert!(is_instance_id("A.b_c-9"));
        assert!(is_instance_id(&"x".repeat(128)));
        for bad in ["", "a b", "a/b", "a:b", &"x".repeat(129)] {
            assert!(!is_instance_id(bad), "{bad}");
        }
    }

    #[test]
    fn addresses_must_be_host_and_port() {
        for good in ["127.0.0.1:1", "localhost:65535", "[::1]:8080", "a-b.c:80"] {
            assert!(is_host_port(good), "{good}");
        }
        for bad in [
            "",
            "nope",
            "127.0.0.1",
            "127.0.0.1:",
            ":80",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:+80",
            "::1:80",
            "[::1:80",
            "http://x:80",
            "a b:80",
            "-a:80",
            "a..b:80",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_pointer() {
        let mut i = Instance::new("Bad Name", "", "nope");
        i.grpc_addr = Some("x".into());
        i.metadata.insert("a/b".into(), "\u{0}".into());
        assert_eq!(
            pointers(&i),
            [
                "/service",
                "/instance_id",
                "/http_addr",
                "/grpc_addr",
                "/metadata/a~1b"
            ]
        );
    }

    #[test]
    fn heartbeats_come_three_times_per_lease() {
        assert_eq!(
            heartbeat_interval(Duration::from_secs(9)),
            Duration::from_secs(3)
        );
        assert_eq!(
            heartbeat_interval(Duration::from_millis(150)),
            MIN_HEARTBEAT
        );
    }

    proptest! {
        #[test]
        fn validation_never_panics(service in "\\PC{0,70}", id in "\\PC{0,140}", addr in "\\PC{0,40}") {
            let _ = validate(&Instance::new(service, id, addr));
        }
    }
}
