use bazaar_gateway::{AuthPolicy, RouteTable};

#[test]
fn a_route_table_file_parses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, crate::helpers::ROUTES).unwrap();
    let table = RouteTable::from_toml_file(&path).unwrap();
    let admin = table.find("/api/v1/admin/things/1").unwrap();
    assert_eq!(admin.auth, AuthPolicy::Admin);
    assert_eq!(
        admin.upstream_path("/api/v1/admin/things/1"),
        "/admin/things/1"
    );
    let example =
        RouteTable::from_toml_file(concat!(env!("CARGO_MANIFEST_DIR"), "/routes.example.toml"))
            .unwrap();
    assert_eq!(example, RouteTable::default());
}

#[test]
fn a_bad_route_table_file_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(
        &path,
        "[[route]]\nprefix = \"/api/v1/x\"\nservice = \"x\"\ntimeout_ms = \"soon\"\n",
    )
    .unwrap();
    let err = RouteTable::from_toml_file(&path).unwrap_err().to_string();
    assert!(err.contains("routes.toml"), "{err}");
    assert!(err.contains("timeout_ms"), "{err}");
    assert!(err.contains("line 4"), "{err}");

    std::fs::write(
        &path,
        "[[route]]\nprefix = \"/api/v1/x/\"\nservice = \"x\"\n",
    )
    .unwrap();
    let err = RouteTable::from_toml_file(&path).unwrap_err().to_string();
    assert!(err.contains("route 1 (prefix `/api/v1/x/`)"), "{err}");
    assert!(err.contains("must not end with '/'"), "{err}");
}
