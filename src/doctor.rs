//! `doctor`'s checks, each a finding with what is missing and the fix. Pure where it can be (the
//! verdicts take what was observed), so each one is tested without breaking the machine.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

impl Finding {
    pub fn ok(check: &str, detail: impl Into<String>) -> Finding {
        Finding { check: check.to_string(), ok: true, detail: detail.into() }
    }
    pub fn missing(check: &str, detail: impl Into<String>) -> Finding {
        Finding { check: check.to_string(), ok: false, detail: detail.into() }
    }
}

/// Clock skew beyond this breaks TLS validity windows and makes expiries land wrong.
pub const MAX_SKEW_S: i64 = 60;

/// The local clock against a server's Date header (unix seconds), when it sent one.
pub fn clock_skew(against: &str, server_unix: Option<i64>) -> Finding {
    skew_verdict(against, server_unix, time::OffsetDateTime::now_utc().unix_timestamp())
}

pub fn skew_verdict(against: &str, server_unix: Option<i64>, local_unix: i64) -> Finding {
    let check = "clock";
    match server_unix {
        None => Finding::ok(check, format!("not checked: the {against} sent no Date header")),
        Some(s) => {
            let d = local_unix - s;
            if d.abs() <= MAX_SKEW_S {
                Finding::ok(check, format!("{d:+} s against the {against}"))
            } else {
                Finding::missing(check, format!("this machine's clock is {d:+} s off the {against}: sync it (e.g. `chronyc makestep` or `timedatectl set-ntp true`)"))
            }
        }
    }
}

/// An ssh-agent with keys, or key files in ~/.ssh: `create --provider ssh` and logins without a
/// trial key need one of them.
pub fn ssh_keys(agent_sock: Option<&str>, agent_has_keys: bool, home: Option<&Path>) -> Finding {
    let check = "ssh keys";
    if agent_sock.is_some() && agent_has_keys {
        return Finding::ok(check, "ssh-agent holds keys");
    }
    let files: Vec<PathBuf> = home
        .map(|h| ["id_ed25519", "id_ecdsa", "id_rsa"].iter().map(|f| h.join(".ssh").join(f)).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    if let Some(f) = files.first() {
        return Finding::ok(check, format!("key file {}", f.display()));
    }
    Finding::missing(
        check,
        if agent_sock.is_some() {
            "ssh-agent has no keys and ~/.ssh has no id_ed25519/id_ecdsa/id_rsa: `ssh-add` one, or pass --identity"
        } else {
            "no ssh-agent (SSH_AUTH_SOCK unset) and no key in ~/.ssh: start one and `ssh-add`, or pass --identity"
        },
    )
}

/// A program on PATH, for what needs it.
pub fn tool(name: &str, why: &str, path_var: Option<&str>) -> Finding {
    let found = path_var
        .unwrap_or("")
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0));
    match found {
        Some(p) => Finding::ok(name, format!("{} ({why})", p.display())),
        None => Finding::missing(name, format!("{name} is not on PATH; {why} needs it")),
    }
}

/// Free space where snapshots and shipped images are staged.
pub fn disk(path: &Path, free_bytes: Option<u64>, need: u64) -> Finding {
    match free_bytes {
        Some(f) if f >= need => Finding::ok("disk", format!("{} free at {}", human(f), path.display())),
        Some(f) => Finding::missing("disk", format!("only {} free at {} (want {}): free some space", human(f), path.display(), human(need))),
        None => Finding::missing("disk", format!("cannot read the free space at {}", path.display())),
    }
}

pub fn free_bytes(path: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed struct the call fills.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// The state dir holds keys and passwords: nobody else may read it.
pub fn state_dir(root: &Path) -> Finding {
    let check = "state dir";
    match std::fs::metadata(root) {
        Err(_) => Finding::ok(check, format!("{} does not exist yet (created 0700 on first use)", root.display())),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => Finding::missing(
            check,
            format!("{} has mode {:o}: others may read trial keys; run chmod 700 {}", root.display(), m.permissions().mode() & 0o777, root.display()),
        ),
        Ok(_) => Finding::ok(check, format!("{} is private", root.display())),
    }
}

fn human(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_beyond_a_minute_is_a_finding_naming_the_offset() {
        assert!(skew_verdict("API", Some(1000), 1030).ok);
        let f = skew_verdict("API", Some(1000), 1200);
        assert!(!f.ok && f.detail.contains("+200 s"), "{f:?}");
        assert!(skew_verdict("API", None, 0).ok);
    }

    #[test]
    fn a_readable_state_dir_is_a_finding() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!state_dir(d.path()).ok);
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(state_dir(d.path()).ok);
    }

    #[test]
    fn tools_are_looked_up_on_the_given_path() {
        assert!(tool("sh", "x", Some("/nonexistent:/bin:/usr/bin")).ok);
        let f = tool("sh", "the test", Some("/nonexistent"));
        assert!(!f.ok && f.detail == "sh is not on PATH; the test needs it", "{f:?}");
    }
}

/// Programs a kind of host needs on this machine (besides what every kind needs).
pub fn tools_for(kind: munero_provider::ProviderKind) -> Vec<(&'static str, &'static str)> {
    match kind {
        munero_provider::ProviderKind::Local => vec![("qemu-system-x86_64", "--provider local"), ("qemu-img", "--provider local")],
        _ => Vec::new(),
    }
}
