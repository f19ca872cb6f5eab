//! Child processes and temporary directories that clean up after themselves.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use nix::{sys::signal::Signal, unistd::Pid};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

/// How many output lines of a child are kept for error messages.
const TAIL_LINES: usize = 30;

/// A directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> anyhow::Result<TempDir> {
        let name = format!("bazaar-bench-{label}-{}", uuid::Uuid::new_v4().simple());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Free ports on 127.0.0.1 for programs that must be told their port in advance (nginx, a
/// NATS server, the registry and gateway of `bazaar up`).
///
/// The ports come from below the kernel's ephemeral range (`ip_local_port_range`). A port
/// found by binding port 0 and releasing it is an ephemeral one, and every service `bazaar up`
/// starts binds port 0: one of them could be handed it before the gateway binds it (seen in
/// CI as "cannot bind …: Address already in use"), or while a killed gateway restarts. Below
/// the range only another program choosing ports the same way can collide, and each port is
/// checked by binding it.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    use rand::Rng;
    let (low, _) = ephemeral_range();
    let floor: u16 = 10_000;
    // Every listener stays open until all ports are known, so the N ports are distinct.
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0_u16; N];
    let mut rng = rand::thread_rng();
    for port in &mut ports {
        let listener = if low > floor + 1_000 {
            (0..200)
                .find_map(|_| {
                    std::net::TcpListener::bind(("127.0.0.1", rng.gen_range(floor..low))).ok()
                })
                .context("find a free port below the ephemeral range")?
        } else {
            std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?
        };
        *port = listener.local_addr()?.port();
        listeners.push(listener);
    }
    Ok(ports)
}

/// The kernel's ephemeral port range; Linux's default when it cannot be read.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(str::parse::<u16>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .unwrap_or((32_768, 60_999))
}

/// A `Command` for this same binary with no inherited `BAZAAR_*` settings, so a variable in
/// the caller's shell (a route file, a database URL) cannot change what is measured.
pub fn bazaar_command() -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("find the bazaar executable")?;
    let mut cmd = Command::new(exe);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BAZAAR_") {
            cmd.env_remove(key);
        }
    }
    Ok(cmd)
}

type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running child process, sent SIGTERM when dropped while still running.
///
/// SIGTERM rather than SIGKILL so that nginx and `bazaar up` take their own children down
/// with them. Callers that also want a SIGKILL backstop set `kill_on_drop` on the command.
/// Stdout lines are available through [`ChildProc::wait_for_line`]; the last lines of stdout
/// and stderr are kept for error messages. Both pipes are always drained, so a chatty child
/// never blocks on a full pipe.
pub struct ChildProc {
    name: String,
    child: Child,
    stdout_lines: mpsc::UnboundedReceiver<String>,
    tail: Tail,
}

impl ChildProc {
    pub fn spawn(name: &str, mut cmd: Command) -> anyhow::Result<ChildProc> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("start {name}"))?;
        let tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, stdout_lines) = mpsc::unbounded_channel();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(drain(out, tail.clone(), Some(tx)));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(drain(err, tail.clone(), None));
        }
        Ok(ChildProc {
            name: name.to_owned(),
            child,
            stdout_lines,
            tail,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last lines the child wrote, joined for an error message.
    pub fn tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.is_empty() {
            return "(no output)".to_owned();
        }
        tail.iter().cloned().collect::<Vec<_>>().join("\n    ")
    }

    /// The exit status, if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the first stdout line `pick` accepts.
    pub async fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        pick: impl Fn(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stdout_lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(found) = pick(&line) {
                        return Ok(found);
                    }
                }
                Ok(None) => {
                    // Stdout closed: the child is exiting; give it a moment to report why.
                    let status =
                        tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
                    let status = match status {
                        Ok(Ok(s)) => s.to_string(),
                        _ => "closed its output".to_owned(),
                    };
                    anyhow::bail!(
                        "{} stopped during start-up ({status}):\n    {}",
                        self.name,
                        self.tail()
                    );
                }
                Err(_) => anyhow::bail!(
                    "{} did not start within {timeout:?}:\n    {}",
                    self.name,
                    self.tail()
                ),
            }
        }
    }

    /// SIGTERM, then SIGKILL if the child is still running after `grace`.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return Ok(());
            }
            eprintln!(
                "bench: {} did not stop within {grace:?}; killing it",
                self.name
            );
        }
        self.child
            .kill()
            .await
            .with_context(|| format!("kill {}", self.name))
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        // `id()` is None once the child has been reaped, so a recycled pid is never signalled.
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
}

async fn drain(
    stream: impl AsyncRead + Unpin,
    tail: Tail,
    lines: Option<mpsc::UnboundedSender<String>>,
) {
    let mut reader = BufReader::new(stream).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        {
            let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.clone());
        }
        if let Some(tx) = &lines {
            let _ = tx.send(line);
        }
    }
}

/// The address in a `... listening on <addr>` line.
pub fn listening_addr(line: &str, prefix: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix(prefix)?;
    let (_, addr) = rest.split_once(" listening on ")?;
    addr.trim().parse().ok()
}

/// Whether `program` is an executable file in a directory on `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_of_a_listening_line() {
        let line = "bazaar-serve: gateway listening on 127.0.0.1:4123";
        assert_eq!(
            listening_addr(line, "bazaar-serve: "),
            Some("127.0.0.1:4123".parse().unwrap())
        );
        assert_eq!(listening_addr("something else", "bazaar-serve: "), None);
        assert_eq!(
            listening_addr(
                "bazaar-serve: gateway listening on nowhere",
                "bazaar-serve: "
            ),
            None
        );
    }

    #[test]
    fn free_ports_are_distinct_and_outside_the_ephemeral_range() {
        let [a, b, c] = free_ports::<3>().unwrap();
        let (low, high) = ephemeral_range();
        for port in [a, b, c] {
            assert!(!(low..=high).contains(&port), "{port} is ephemeral");
        }
        assert!(a != b && b != c && a != c);
    }

    #[test]
    fn a_temp_dir_is_removed_with_its_contents_on_drop() {
        let dir = TempDir::new("test").unwrap();
        let path = dir.path().to_owned();
        std::fs::write(path.join("file"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
