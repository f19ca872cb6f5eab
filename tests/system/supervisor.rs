//! `bazaar up` keeps the shop serving when a process dies.

use std::time::{Duration, Instant};

use nix::{sys::signal::Signal, unistd::Pid};
use serde_json::Value;

use crate::support::{Options, Shop};

#[tokio::test]
async fn a_killed_catalog_is_restarted_re_registered_and_served_again() {
    let shop = Shop::start().await;
    let c = &shop.client;
    let (_, token, _) = shop.customer().await;
    // Authenticated requests bypass the gateway cache, so every one reaches the catalog.
    let get = || {
        c.get(shop.url("/api/v1/products?limit=3"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);

    let before = shop.process("catalog");
    let old_pid = before["pid"].as_u64().unwrap();
    let old_addr = before["addr"].as_str().unwrap().to_owned();
    nix::sys::signal::kill(Pid::from_raw(old_pid as i32), Signal::SIGKILL).unwrap();
    let killed_at = Instant::now();

    // The supervisor restarts it (new pid) …
    let new = loop {
        let p = shop.process("catalog");
        if p["pid"].as_u64().unwrap() != old_pid && p["restarts"].as_u64().unwrap() >= 1 {
            break p;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "catalog was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let new_addr = new["addr"].as_str().unwrap().to_owned();

    // … the registry lists the new address and not the old one …
    loop {
        let list: Value = c
            .get(format!("{}/v1/services/catalog/instances", shop.registry))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let addrs: Vec<&str> = list["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["http_addr"].as_str().unwrap())
            .collect();
        if addrs.contains(&new_addr.as_str())
            && (old_addr == new_addr || !addrs.contains(&old_addr.as_str()))
        {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "registry did not notice: {addrs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // … and the gateway serves products again within a few seconds …
    loop {
        if get().await.map(|r| r.status() == 200).unwrap_or(false) {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "gateway did not serve products again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = killed_at.elapsed();
    eprintln!("catalog served again {recovered:?} after SIGKILL");

    // … with no 5xx once it is back.
    for i in 0..200 {
        let res = get().await.unwrap();
        assert_eq!(
            res.status(),
            200,
            "request {i} after recovery answered {}",
            res.status()
        );
    }

    // `bazaar status` sees it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args(["status", "--json", "--data-dir"])
        .arg(shop.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let catalog = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "catalog")
        .unwrap();
    assert_eq!(catalog["health"], "ready");
    assert_eq!(catalog["registered"], true);
    assert!(catalog["restarts"].as_u64().unwrap() >= 1);
    let _ = shop.pid();
}

#[tokio::test]
async fn ctrl_c_stops_every_process_gracefully_without_restarts() {
    let mut shop = Shop::start().await;
    let pids: Vec<u32> = shop.run_file()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(pids.len(), 10);
    // What a terminal does on Ctrl-C: SIGINT to the foreground process group.
    nix::sys::signal::killpg(Pid::from_raw(shop.pid() as i32), Signal::SIGINT).unwrap();
    let status = shop
        .wait_exit(Duration::from_secs(30))
        .expect("bazaar up did not stop");
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived the supervisor"
        );
    }
    assert!(
        !shop.data_dir().join("run.json").exists(),
        "run.json is removed on a clean stop"
    );
    let logs = shop.logs();
    assert!(
        !logs.contains("Restarting"),
        "a stopping child was restarted:\n{logs}"
    );
}

#[tokio::test]
async fn a_generated_admin_password_reaches_only_identity_and_a_private_file() {
    let shop = Shop::start_with(Options {
        generated_admin_password: true,
        ..Options::default()
    })
    .await;
    // stdout is not a terminal here, so the password is not printed but written 0600.
    let path = shop.data_dir().join("admin-password");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no admin-password file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let password = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert!(password.len() >= 16);
    let _ = shop.token("admin@bazaar.local", &password).await;
    for p in shop.run_file()["processes"].as_array().unwrap() {
        let environ = std::fs::read(format!("/proc/{}/environ", p["pid"])).unwrap();
        let has = String::from_utf8_lossy(&environ)
            .split('\0')
            .any(|kv| kv.starts_with("BAZAAR_ADMIN_PASSWORD="));
        assert_eq!(has, p["service"] == "identity", "{}", p["service"]);
    }
    assert!(
        !shop.logs().contains(&password),
        "the password reached a log"
    );
}
