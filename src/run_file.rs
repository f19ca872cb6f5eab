//! `run.json` in the data directory: what `bazaar up` started, for `bazaar status` and tests.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One supervised process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunProcess {
    pub service: String,
    pub instance_id: String,
    pub pid: u32,
    pub addr: String,
    /// Unix seconds when this process was started.
    pub started_at: i64,
    /// How many times the supervisor restarted this instance.
    pub restarts: u32,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunFile {
    pub supervisor_pid: u32,
    pub mode: String,
    pub gateway_url: String,
    pub registry_url: String,
    pub started_at: i64,
    pub processes: Vec<RunProcess>,
}

impl RunFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("run.json")
    }

    pub fn load(data_dir: &Path) -> anyhow::Result<RunFile> {
        let path = Self::path(data_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {} ({e}); is `bazaar up` running there?",
                path.display()
            )
        })?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Writes atomically (temp file + rename), so a reader never sees half a file.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(data_dir);
        let tmp = data_dir.join("run.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
