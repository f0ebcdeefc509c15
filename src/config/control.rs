//! `[control]`: the control socket.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::invalid;
use super::wait::Wait;

/// `[control]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Socket path; empty means the default of [`ControlConfig::socket_path`].
    pub socket: PathBuf,
    /// Control connections served at once.
    pub max_connections: usize,
    /// A control connection idle this long is closed.
    pub idle_timeout: Wait,
    /// How long `upgrade` (and SIGUSR2) waits for the new process to be
    /// ready before stopping it, unless the command gives its own.
    pub upgrade_timeout: Wait,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::new(),
            max_connections: 64,
            idle_timeout: Wait::from_secs(30),
            upgrade_timeout: Wait::from_secs(60),
        }
    }
}

impl ControlConfig {
    /// The socket path in effect, absolute: `control.socket` when set (made
    /// absolute against the working directory), else
    /// `$RUNTIME_DIRECTORY/diem.sock` (systemd's `RuntimeDirectory=`), else
    /// `$XDG_RUNTIME_DIR/diem.sock`, else `/run/diem/diem.sock` for root and
    /// `$TMPDIR/diem-<uid>/diem.sock` for anyone else.
    pub fn socket_path(&self) -> PathBuf {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let path = if !self.socket.as_os_str().is_empty() {
            self.socket.clone()
        } else if let Some(dir) = var("RUNTIME_DIRECTORY") {
            // systemd may list several directories, separated by ':'.
            let first = dir
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            Path::new(&first).join("diem.sock")
        } else if let Some(dir) = var("XDG_RUNTIME_DIR") {
            dir.join("diem.sock")
        } else if rustix::process::geteuid().is_root() {
            PathBuf::from("/run/diem/diem.sock")
        } else {
            std::env::temp_dir()
                .join(format!("diem-{}", rustix::process::geteuid().as_raw()))
                .join("diem.sock")
        };
        std::path::absolute(&path).unwrap_or(path)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return invalid("control.max_connections", "a number of at least 1");
        }
        Ok(())
    }
}
