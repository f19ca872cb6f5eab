//! Which headers cross the gateway, in each direction.
//!
//! Towards the upstream: hop-by-hop headers go (they describe the client's connection, not
//! the request), and so does every header an upstream could mistake for something the
//! gateway vouches for: identity headers (`X-User-Id`, `X-Roles`, …), anything `X-Bazaar-*`
//! or `X-Internal-*`, and client-sent `X-Forwarded-*`/`Forwarded`/`X-Real-IP`, which the
//! gateway — the edge — sets itself. `Authorization` stays: services verify the token
//! themselves with the same platform code.

use std::net::IpAddr;

use bazaar_runtime::RequestContext;
use http::{header, HeaderMap, HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy ones every proxy drops).
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || name.starts_with("proxy-")
}

/// Headers a client must not be able to send to a service through the gateway.
fn is_internal(name: &str) -> bool {
    matches!(
        name,
        "x-user-id" | "x-user-roles" | "x-roles" | "x-real-ip" | "forwarded"
    ) || name.starts_with("x-bazaar-")
        || name.starts_with("x-internal-")
        || name.starts_with("x-forwarded-")
}

/// Removes the headers the `Connection` header names, then `Connection` itself is removed
/// with the other hop-by-hop headers by the caller.
fn remove_connection_listed(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::CONNECTION).iter();
    let Some(first) = values.next().cloned() else {
        return;
    };
    // Collecting an empty iterator does not allocate; several Connection headers are rare.
    let rest: Vec<HeaderValue> = values.cloned().collect();
    for value in std::iter::once(&first).chain(&rest) {
        let Ok(list) = value.to_str() else { continue };
        for token in list.split(',') {
            let token = token.trim();
            if !token.is_empty() {
                headers.remove(token);
            }
        }
    }
}

fn remove_where(headers: &mut HeaderMap, doomed: impl Fn(&str) -> bool) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| doomed(n.as_str()))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Turns the client's request headers into the upstream request's headers, in place.
pub(crate) fn prepare_request(
    headers: &mut HeaderMap,
    client_ip: IpAddr,
    ctx: Option<&RequestContext>,
) {
    remove_connection_listed(headers);
    // The upstream's Host is its own authority (hyper sets it); the client's goes along as
    // X-Forwarded-Host.
    let host = headers.remove(header::HOST);
    remove_where(headers, |n| {
        is_hop_by_hop(n) || is_internal(n) || n == "expect"
    });
    if let Ok(ip) = HeaderValue::try_from(client_ip.to_string()) {
        headers.insert(X_FORWARDED_FOR.clone(), ip);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    if let Some(ctx) = ctx {
        // The gateway's span becomes the upstream's parent.
        ctx.inject(headers);
    }
}

/// Cleans the upstream's response headers for the client, in place.
pub(crate) fn prepare_response(headers: &mut HeaderMap) {
    remove_connection_listed(headers);
    remove_where(headers, |n| {
        is_hop_by_hop(n) || n.starts_with("x-internal-")
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_internal_and_spoofed_headers() {
        let mut h = map(&[
            ("host", "gateway.example"),
            ("connection", "keep-alive, x-custom-hop"),
            ("x-custom-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("x-user-id", "admin"),
            ("x-user-roles", "admin"),
            ("x-roles", "admin"),
            ("x-forwarded-user", "admin"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-bazaar-user", "admin"),
            ("x-internal-token", "s3cret"),
            ("forwarded", "for=6.6.6.6"),
            ("authorization", "Bearer abc"),
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ]);
        prepare_request(&mut h, "10.1.2.3".parse().unwrap(), None);
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "accept",
                "authorization",
                "content-type",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto"
            ]
        );
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-host"], "gateway.example");
    }

    #[test]
    fn adds_trace_context_of_the_gateway_hop() {
        let mut incoming = HeaderMap::new();
        incoming.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let ctx = RequestContext::from_headers(&incoming, "/x");
        let mut h = incoming.clone();
        prepare_request(&mut h, "127.0.0.1".parse().unwrap(), Some(&ctx));
        assert_eq!(h["traceparent"], ctx.traceparent().as_str());
        assert_eq!(h["x-request-id"], ctx.request_id.as_str());
    }

    #[test]
    fn response_keeps_end_to_end_headers_only() {
        let mut h = map(&[
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
            ("x-internal-host", "db-1"),
            ("etag", "\"1\""),
        ]);
        prepare_response(&mut h);
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "etag"]);
    }
}
