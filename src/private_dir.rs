//! Whether a directory is private to this user: where diem puts the
//! sockets only its own user may reach (the control socket, the socket an
//! upgrade hands its listeners over on).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why `dir` is not private to this user: owned by another (root aside)
/// or writable by group or others — the rule of ssh and tmux for their
/// sockets' directories. A sticky world-writable directory (`/tmp`) is
/// refused too: another user may not replace our file there, but may take
/// a name before we do.
pub(crate) fn not_private(dir: &Path) -> Option<String> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) => return Some(e.to_string()),
    };
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_dir() {
        return Some("not a directory".to_owned());
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!("owned by uid {}, not by this user ({me})", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    None
}
