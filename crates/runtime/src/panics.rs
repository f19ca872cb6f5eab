//! A panic hook that leaves a record on disk.
//!
//! A panic in a request handler is caught by the HTTP stack (the client gets a 500) and a
//! panic in a background task ends that task: neither ends the process, so neither shows in
//! the supervisor's record of exits. `bazaar check` reads these files after a chaos run and
//! counts every panic as a failure. One JSON line per panic, appended to
//! `<dir>/<instance>.jsonl`: the time, the thread, the location and the message.

use std::{io::Write as _, path::PathBuf};

/// Installs the hook (keeping the previous one, which prints the panic to stderr). Panics are
/// written to `<dir>/<instance>.jsonl`; the directory is created on the first panic.
pub fn install(dir: PathBuf, instance: &str) {
    let file = dir.join(format!("{instance}.jsonl"));
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(not a string)".to_owned());
        let line = serde_json::json!({
            "at_unix_ms": crate::time::now_micros() / 1000,
            "thread": std::thread::current().name().unwrap_or("?"),
            "location": info.location().map(|l| format!("{}:{}", l.file(), l.line())),
            "message": message,
        });
        // Best effort: a panic hook must not panic.
        let _ = std::fs::create_dir_all(&dir).and_then(|()| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)?;
            writeln!(f, "{line}")
        });
        previous(info);
    }));
}

/// The panic records in `dir`: `(instance, line)` for every line of every file.
pub fn read_all(dir: &std::path::Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(instance) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
        else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(&path) {
            out.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| (instance.to_owned(), l.to_owned())),
            );
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_panic_is_appended_to_the_instance_file() {
        let dir = tempfile::tempdir().unwrap();
        install(dir.path().join("panics"), "order-7");
        let r = std::thread::Builder::new()
            .name("doomed".into())
            .spawn(|| panic!("boom {}", 42))
            .unwrap()
            .join();
        assert!(r.is_err());
        let _ = std::panic::take_hook();
        let all = read_all(&dir.path().join("panics"));
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].0, "order-7");
        let v: serde_json::Value = serde_json::from_str(&all[0].1).unwrap();
        assert_eq!(v["message"], "boom 42");
        assert_eq!(v["thread"], "doomed");
        assert!(v["location"].as_str().unwrap().contains("panics.rs"));
    }
}
