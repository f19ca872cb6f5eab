//! The one OpenAPI 3.1 document of the public API, merged from the services' fragments.
//!
//! Each service owns an `openapi.json` fragment describing its own paths and schemas; the
//! gateway owns the shared parts (the `Problem` schema, the bearer scheme, the answers only
//! the gateway gives: 429, 502, 503, 504). They are compiled in and merged once at start, so
//! the document always matches the code that was built. Where two fragments define the same
//! component differently, the first one wins (the gateway's comes first) and a warning is
//! logged; the unit tests keep that from happening unnoticed.

use serde_json::{json, Map, Value};

/// The gateway's own fragment.
const GATEWAY: &str = include_str!("../openapi.json");

/// The services' fragments, as (service, JSON text), merged in this order after the
/// gateway's. Extension point: add a service here when it publishes one.
const FRAGMENTS: &[(&str, &str)] = &[
    ("identity", include_str!("../../identity/openapi.json")),
    ("catalog", include_str!("../../catalog/openapi.json")),
    ("inventory", include_str!("../../inventory/openapi.json")),
    ("order", include_str!("../../order/openapi.json")),
    ("payment", include_str!("../../payment/openapi.json")),
    ("shipping", include_str!("../../shipping/openapi.json")),
    (
        "notification",
        include_str!("../../notification/openapi.json"),
    ),
];

/// Gateway-level answers every proxied operation can get, as `components/responses` names.
const GATEWAY_RESPONSES: &[(&str, &str)] = &[
    ("429", "RateLimited"),
    ("502", "UpstreamFailed"),
    ("503", "UpstreamUnavailable"),
    ("504", "UpstreamTimeout"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The merged document.
pub fn merged() -> anyhow::Result<Value> {
    let gateway: Value = serde_json::from_str(GATEWAY)
        .map_err(|e| anyhow::anyhow!("the gateway's OpenAPI fragment is not JSON: {e}"))?;
    let mut fragments = Vec::with_capacity(FRAGMENTS.len());
    for (name, text) in FRAGMENTS {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("the OpenAPI fragment of {name} is not JSON: {e}"))?;
        fragments.push((*name, value));
    }
    let merged = merge(gateway, &fragments)?;
    for c in &merged.conflicts {
        tracing::warn!(component = %c, "Two OpenAPI fragments define this component differently; the first is used.");
    }
    Ok(merged.document)
}

/// A merged document and the component names defined differently by two fragments.
pub(crate) struct Merged {
    pub document: Value,
    pub conflicts: Vec<String>,
}

pub(crate) fn merge(gateway: Value, fragments: &[(&str, Value)]) -> anyhow::Result<Merged> {
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Bazaar",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The public HTTP API of the Bazaar shop. Errors are RFC 9457 problem details; every \
                response carries `X-Request-Id` and `traceparent`; rate-limited routes carry `RateLimit-*` headers.",
        },
        "servers": [{ "url": "http://127.0.0.1:8080", "description": "The gateway started by `bazaar up`." }],
        "tags": [],
        "paths": {},
        "components": {},
    });
    let mut conflicts = Vec::new();
    add_fragment(&mut doc, "gateway", gateway, false, &mut conflicts)?;
    for (name, fragment) in fragments {
        add_fragment(&mut doc, name, fragment.clone(), true, &mut conflicts)?;
    }
    Ok(Merged {
        document: doc,
        conflicts,
    })
}

fn add_fragment(
    doc: &mut Value,
    name: &str,
    fragment: Value,
    proxied: bool,
    conflicts: &mut Vec<String>,
) -> anyhow::Result<()> {
    let Value::Object(mut fragment) = fragment else {
        anyhow::bail!("the OpenAPI fragment of {name} is not a JSON object");
    };
    if let Some(Value::Array(tags)) = fragment.remove("tags") {
        let known = doc["tags"]
            .as_array_mut()
            .ok_or_else(|| anyhow::anyhow!("tags"))?;
        for tag in tags {
            if !known.iter().any(|t| t["name"] == tag["name"]) {
                known.push(tag);
            }
        }
    }
    match fragment.remove("paths") {
        Some(Value::Object(paths)) => {
            let all = doc["paths"]
                .as_object_mut()
                .ok_or_else(|| anyhow::anyhow!("paths"))?;
            for (path, item) in paths {
                let Value::Object(mut item) = item else {
                    anyhow::bail!("{name}: the OpenAPI path item `{path}` is not an object");
                };
                if proxied {
                    add_gateway_responses(&mut item);
                }
                let slot = all
                    .entry(path.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let slot = slot
                    .as_object_mut()
                    .ok_or_else(|| anyhow::anyhow!("paths"))?;
                for (key, value) in item {
                    if slot.contains_key(&key) && METHODS.contains(&key.as_str()) {
                        anyhow::bail!(
                            "{name}: `{key} {path}` is described by two OpenAPI fragments"
                        );
                    }
                    slot.entry(key).or_insert(value);
                }
            }
        }
        Some(_) => anyhow::bail!("{name}: `paths` of the OpenAPI fragment is not an object"),
        None => {}
    }
    if let Some(Value::Object(components)) = fragment.remove("components") {
        let all = doc["components"]
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("components"))?;
        for (section, entries) in components {
            let Value::Object(entries) = entries else {
                continue;
            };
            let target = all
                .entry(section.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let target = target
                .as_object_mut()
                .ok_or_else(|| anyhow::anyhow!("components"))?;
            for (key, value) in entries {
                match target.get(&key) {
                    Some(existing) if *existing != value => {
                        conflicts.push(format!("{section}/{key} (from {name})"))
                    }
                    Some(_) => {}
                    None => {
                        target.insert(key, value);
                    }
                }
            }
        }
    }
    Ok(())
}

fn add_gateway_responses(item: &mut Map<String, Value>) {
    for (key, op) in item.iter_mut() {
        if !METHODS.contains(&key.as_str()) {
            continue;
        }
        let Some(op) = op.as_object_mut() else {
            continue;
        };
        let responses = op
            .entry("responses")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(responses) = responses.as_object_mut() else {
            continue;
        };
        for (status, component) in GATEWAY_RESPONSES {
            responses.entry(*status).or_insert_with(
                || json!({ "$ref": format!("#/components/responses/{component}") }),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        if let Some(s) = v.as_str() {
                            out.push(s.to_owned());
                        }
                    }
                    refs(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    fn fragments() -> Vec<(&'static str, Value)> {
        FRAGMENTS
            .iter()
            .map(|(n, t)| (*n, serde_json::from_str(t).unwrap()))
            .collect()
    }

    #[test]
    fn every_ref_resolves() {
        let doc = merged().unwrap();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref {r}"));
            // JSON pointer unescaping (~1 = '/', ~0 = '~') is done by serde_json's pointer().
            assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
        }
    }

    #[test]
    fn every_security_requirement_names_a_scheme() {
        let doc = merged().unwrap();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for req in op["security"].as_array().into_iter().flatten() {
                    for name in req.as_object().unwrap().keys() {
                        assert!(
                            schemes.contains_key(name),
                            "{method} {path} needs unknown scheme {name}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn merges_the_services_paths_with_the_gateways_components() {
        let doc = merged().unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "Bazaar");
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/v1/openapi.json",
            "/docs",
            "/api/v1/me/overview",
            "/api/v1/admin/dead-letters",
            "/api/v1/admin/dead-letters/{service}/{id}/redrive",
            "/api/v1/admin/breakers",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        for (_, fragment) in fragments() {
            for p in fragment["paths"].as_object().unwrap().keys() {
                assert!(paths.contains_key(p), "{p}");
            }
        }
        assert!(doc.pointer("/components/schemas/Problem").is_some());
        assert!(doc.pointer("/components/schemas/FieldError").is_some());
        assert!(doc.pointer("/components/securitySchemes/bearer").is_some());
    }

    #[test]
    fn proxied_operations_document_the_gateways_own_answers() {
        let doc = merged().unwrap();
        for (_, fragment) in fragments() {
            for (path, item) in fragment["paths"].as_object().unwrap() {
                for method in item
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| METHODS.contains(&k.as_str()))
                {
                    let responses = &doc["paths"][path][method]["responses"];
                    for (status, _) in GATEWAY_RESPONSES {
                        assert!(
                            responses.get(*status).is_some(),
                            "{method} {path} lacks {status}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_documented_ops_services_are_the_ones_the_gateway_routes_to() {
        let doc = merged().unwrap();
        let documented: Vec<&str> = doc["components"]["schemas"]["EventService"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(documented, crate::ops::OPS_SERVICES);
    }

    #[test]
    fn the_fragments_agree_on_shared_components() {
        let gateway = serde_json::from_str(GATEWAY).unwrap();
        let merged = merge(gateway, &fragments()).unwrap();
        assert!(merged.conflicts.is_empty(), "{:?}", merged.conflicts);
    }

    #[test]
    fn the_same_operation_twice_is_an_error() {
        let a = json!({"paths": {"/x": {"get": {"responses": {}}}}});
        let err = merge(json!({}), &[("a", a.clone()), ("b", a)])
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("`get /x` is described by two"),
            "{err}"
        );
    }
}
