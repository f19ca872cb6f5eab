//! nginx as the yardstick: the committed template `deploy/bench/nginx.conf`, rendered into a
//! temporary directory and run in the foreground.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use tokio::process::Command;

use super::process::{find_on_path, free_ports, ChildProc};

/// The committed template.
pub const TEMPLATE: &str = include_str!("../../deploy/bench/nginx.conf");

/// What is printed (and reported) when nginx is not installed.
pub const NOT_INSTALLED: &str = "nginx not installed (apt-get install nginx): skipped";

/// The values substituted into the template.
#[derive(Debug, Clone)]
pub struct NginxConfig {
    pub workers: usize,
    pub prefix: PathBuf,
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
}

/// The template with every `{{placeholder}}` replaced.
pub fn render(template: &str, cfg: &NginxConfig) -> anyhow::Result<String> {
    let prefix = cfg
        .prefix
        .to_str()
        .context("the temporary directory's path is not UTF-8")?;
    // The prefix is written inside double quotes; nothing in it may end the string or the directive.
    if prefix.contains(['"', '\\', ';', '{', '}', '$']) {
        anyhow::bail!("nginx cannot be given the directory {prefix:?}");
    }
    let text = template
        .replace("{{workers}}", &cfg.workers.to_string())
        .replace("{{prefix}}", prefix)
        .replace("{{listen}}", &cfg.listen.to_string())
        .replace("{{upstream}}", &cfg.upstream.to_string());
    // Only directives count: the header comment shows the placeholders on purpose.
    if let Some(line) = text
        .lines()
        .find(|l| !l.trim_start().starts_with('#') && l.contains("{{"))
    {
        anyhow::bail!(
            "deploy/bench/nginx.conf has an unknown placeholder: {}",
            line.trim()
        );
    }
    Ok(text)
}

/// The nginx binary, if it is on `PATH`.
pub fn find() -> Option<PathBuf> {
    find_on_path("nginx")
}

/// Renders the configuration into `dir`, starts nginx in the foreground and waits until it
/// accepts connections. Returns the process and the address it listens on.
pub async fn start(
    nginx: &Path,
    workers: usize,
    upstream: SocketAddr,
    dir: &Path,
) -> anyhow::Result<(ChildProc, SocketAddr)> {
    let [port] = free_ports::<1>()?;
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let cfg = NginxConfig {
        workers,
        prefix: dir.to_owned(),
        listen,
        upstream,
    };
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, render(TEMPLATE, &cfg)?)
        .with_context(|| format!("write {}", conf.display()))?;
    let error_log = dir.join("error.log");
    let mut cmd = Command::new(nginx);
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(&error_log)
        .args(["-g", "daemon off;"]);
    // No kill_on_drop: SIGKILL would leave the worker processes running; SIGTERM (the guard's
    // drop) makes the master stop them.
    let mut child = ChildProc::spawn("nginx", cmd)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.exited() {
            let log = std::fs::read_to_string(&error_log).unwrap_or_default();
            anyhow::bail!("nginx exited at start ({status}): {}\n{log}", child.tail());
        }
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            return Ok((child, listen));
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "nginx did not listen on {listen} within 10 s: {}",
                child.tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg() -> NginxConfig {
        NginxConfig {
            workers: 2,
            prefix: PathBuf::from("/tmp/bazaar-bench-nginx-1"),
            listen: "127.0.0.1:18080".parse().unwrap(),
            upstream: "127.0.0.1:4000".parse().unwrap(),
        }
    }

    fn directives(text: &str) -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_committed_template_renders_a_keepalive_proxy() {
        let text = render(TEMPLATE, &cfg()).unwrap();
        let d = directives(&text);
        for expected in [
            "worker_processes 2;",
            "pid \"/tmp/bazaar-bench-nginx-1/nginx.pid\";",
            "access_log off;",
            "server 127.0.0.1:4000;",
            "keepalive 64;",
            "listen 127.0.0.1:18080;",
            "proxy_pass http://bench_upstream;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_temp_path \"/tmp/bazaar-bench-nginx-1/proxy\";",
        ] {
            assert!(
                d.iter().any(|l| l == expected),
                "missing `{expected}` in:\n{text}"
            );
        }
        assert!(!d.iter().any(|l| l.contains("{{")));
    }

    #[test]
    fn an_unknown_placeholder_is_refused() {
        let err = render("worker_processes {{workers}};\nlisten {{port}};\n", &cfg()).unwrap_err();
        assert!(err.to_string().contains("{{port}}"), "{err}");
    }

    #[test]
    fn a_directory_that_would_break_the_config_is_refused() {
        let mut c = cfg();
        c.prefix = PathBuf::from("/tmp/a\";b");
        assert!(render(TEMPLATE, &c).is_err());
    }
}
