//! The trial's history (the plan's changelog of trial tweaks): one JSON line per lifecycle action
//! with time, operator, action and result, kept locally in `<state>/history/<trial>.jsonl` (0600,
//! outside the trial's directory so it outlives destroy) and on the host in the stack directory.
//!
//! What goes in is decided here from the command and its report, after the command ran, so a
//! command cannot forget to log and a line can only carry the fields picked below: never a
//! password, hash, question or data value.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::cli::{AuthAction, Command};
use crate::ctx::Ctx;
use crate::output::Report;
use crate::remote;
use crate::ssh::{quote, Echo, RemoteCmd};
use crate::timefmt::rfc3339;

/// On the host, beside the stack's compose file (removed with the stack by destroy).
pub const REMOTE_FILE: &str = "deploy/history.jsonl";

pub fn local_path(ctx: &Ctx, trial: &str) -> PathBuf {
    ctx.store.root().join("history").join(format!("{trial}.jsonl"))
}

/// `user@host` of whoever runs the tool.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid{}", unsafe { libc::getuid() }));
    let mut buf = [0u8; 256];
    // SAFETY: the buffer outlives the call and its length is passed.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown".into()
    };
    format!("{user}@{host}")
}

/// One history line. `details` holds only the fields the caller picked (see [`after_command`]).
pub fn line(time_unix: i64, operator: &str, trial: &str, action: &str, ok: bool, details: Map<String, Value>) -> String {
    let mut v = json!({"time": rfc3339(time_unix), "operator": operator, "trial": trial, "action": action,
                       "result": if ok { "ok" } else { "failed" }});
    if let Some(o) = v.as_object_mut() {
        for (k, val) in details {
            o.entry(k).or_insert(val);
        }
    }
    v.to_string()
}

pub fn append_local(ctx: &Ctx, trial: &str, line: &str) -> Result<()> {
    let p = local_path(ctx, trial);
    let dir = p.parent().expect("history file has a directory");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&p)
        .with_context(|| format!("opening {}", p.display()))?;
    f.write_all(format!("{line}\n").as_bytes()).with_context(|| format!("appending to {}", p.display()))
}

pub fn read_local(path: &Path) -> Result<Vec<String>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(s.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect())
}

/// Appends, from stdin, each line the host's log does not have yet: the host ends up with every
/// local line (also those of actions that could not reach it, like create) and keeps lines other
/// operators added. One awk reads the log once (a grep per line forked as many processes as the
/// history has lines, on every deploy).
pub fn sync_cmd(remote_dir: &str) -> RemoteCmd {
    let f = quote(&format!("{remote_dir}/{REMOTE_FILE}"));
    RemoteCmd::shell(format!(
        "umask 077 && mkdir -p -- \"$(dirname -- {f})\" && touch {f} && \
         awk -v f={f} 'BEGIN {{ while ((getline l < f) > 0) have[l] = 1; close(f) }} \
         $0 != \"\" && !($0 in have) {{ have[$0] = 1; print }}' >> {f}"
    ))
}

/// The action a command performs on a trial, for the history; None for commands that change
/// nothing (and for every dry run).
fn action_of(cmd: &Command) -> Option<(&'static str, Vec<String>)> {
    let one = |a: &'static str, t: &str| Some((a, vec![t.to_string()]));
    match cmd {
        Command::Create(a) if !a.dry_run => one("create", &a.trial),
        Command::Deploy(a) if !a.dry_run => one("deploy", &a.trial),
        Command::Wipe(a) if !a.dry_run => one("wipe", &a.trial),
        Command::Destroy(a) if !a.dry_run => one("destroy", &a.trial),
        Command::Extend(a) if !a.dry_run => one("extend", &a.trial),
        Command::Snapshot(a) if !a.dry_run => one("snapshot", &a.trial),
        Command::Restore(a) if !a.dry_run => one("restore", &a.trial),
        Command::Teardown(a) if !a.dry_run => Some(("teardown", Vec::new())),
        Command::Auth(a) => match &a.action {
            AuthAction::Add(x) if !x.dry_run => one("auth-add", &x.trial),
            AuthAction::Rotate(x) if !x.dry_run => one("auth-rotate", &x.trial),
            AuthAction::Revoke(x) if !x.dry_run => one("auth-revoke", &x.trial),
            AuthAction::Sync(x) if !x.dry_run => one("auth-sync", &x.trial),
            _ => None,
        },
        _ => None,
    }
}

/// Only these fields of a report reach the history.
fn details_of(action: &str, report: Option<&Value>) -> Map<String, Value> {
    let mut d = Map::new();
    let Some(r) = report else { return d };
    let mut pick = |k: &str, v: &Value| {
        if !v.is_null() {
            d.insert(k.to_string(), v.clone());
        }
    };
    match action {
        "create" => {
            pick("provider", &r["provider"]);
            pick("server_type", &r["server_type"]);
            pick("expires", &r["expires"]);
        }
        "deploy" => {
            pick("app_revision", &r["app_revision"]);
            pick("data_sha256", &r["results"]["upload"]["sha256"]);
            pick("data_bytes", &r["results"]["upload"]["size"]);
            pick("steps", &r["steps"]);
        }
        "extend" => {
            pick("from", &r["from"]);
            pick("to", &r["to"]);
        }
        "snapshot" => pick("snapshot", &r["snapshot"]["id"]),
        "restore" => {
            pick("server_id", &r["server_id"]);
            pick("ipv4", &r["ipv4"]);
        }
        "wipe" => pick("receipt", &r["wipe_receipt"]["text_file"]),
        "destroy" => pick("receipt", &r["receipt"]["text_file"]),
        a if a.starts_with("auth-") => {
            pick("users", &r["changed"]);
            pick("locked", &r["locked"]);
        }
        _ => {}
    }
    d
}

/// Record what a command did: a line per trial it acted on, locally, and on the host when the
/// trial still has one and the action reached it. A history that cannot be written is a warning,
/// never the command's failure.
pub async fn after_command(ctx: &Ctx, cmd: &Command, result: &Result<Report>) {
    let Some((action, mut trials)) = action_of(cmd) else { return };
    let report = result.as_ref().ok().map(|r| &r.json);
    if action == "teardown" {
        trials = report
            .and_then(|r| r["destroyed"].as_array())
            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
    }
    let ok = result.is_ok() && report.is_some_and(|r| r["ok"] != json!(false));
    // A refused command (bad arguments, no such trial) did nothing to record.
    if let Err(e) = result {
        if crate::error::exit_code_of(e) == 2 {
            return;
        }
    }
    let op = operator();
    for t in trials {
        let l = line(ctx.now.unix_timestamp(), &op, &t, action, ok, details_of(action, report));
        if let Err(e) = append_local(ctx, &t, &l) {
            ctx.out.progress(format!("warning: could not write the history of {t}: {e:#}"));
            continue;
        }
        let reaches_host = ok && (matches!(action, "deploy" | "wipe") || action.starts_with("auth-"));
        if reaches_host {
            if let Err(e) = sync_to_host(ctx, &t).await {
                ctx.out.progress(format!("warning: the history of {t} was not copied to its host: {e:#}"));
            }
        }
    }
}

async fn sync_to_host(ctx: &Ctx, trial: &str) -> Result<()> {
    let Some(t) = ctx.store.load(trial)? else { return Ok(()) };
    let lines = read_local(&local_path(ctx, trial))?;
    let s = remote::connect(ctx, &t).await?;
    let input = std::io::Cursor::new(format!("{}\n", lines.join("\n")).into_bytes());
    let r = s.run_with(&sync_cmd(&remote::remote_dir(&t)), Some(input), Echo::Capture).await;
    s.close().await;
    r.map(|_| ())
}

/// The git revision of the checkout the app was built from, `-dirty` when it has changes.
pub fn git_revision(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| std::process::Command::new("git").arg("-C").arg(dir).args(args).output().ok().filter(|o| o.status.success());
    let rev = String::from_utf8_lossy(&git(&["rev-parse", "--short=12", "HEAD"])?.stdout).trim().to_string();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|o| !o.stdout.is_empty());
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_the_fixed_fields_first() {
        let mut d = Map::new();
        d.insert("users".into(), json!(["bob"]));
        d.insert("result".into(), json!("overwritten?"));
        let l = line(1_767_225_600, "ops@laptop", "acme", "auth-add", true, d);
        assert_eq!(
            l,
            r#"{"action":"auth-add","operator":"ops@laptop","result":"ok","time":"2026-01-01T00:00:00Z","trial":"acme","users":["bob"]}"#
        );
        assert!(!l.contains('\n'));
    }

    #[test]
    fn only_picked_fields_of_a_report_are_kept() {
        let r = json!({"password": "s3cret", "changed": ["bob"], "locked": false, "users": [{"name": "bob", "password": "s3cret"}],
                       "results": {"upload": {"sha256": "ab"}, "smoke": [{"detail": "question text"}]}, "app_revision": "abc"});
        let d = Value::Object(details_of("auth-add", Some(&r))).to_string();
        assert_eq!(d, r#"{"locked":false,"users":["bob"]}"#);
        let d = Value::Object(details_of("deploy", Some(&r))).to_string();
        assert_eq!(d, r#"{"app_revision":"abc","data_sha256":"ab"}"#);
    }

    #[test]
    fn sync_appends_only_missing_lines() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().to_str().unwrap();
        let run = |input: &str| {
            let mut c = std::process::Command::new("sh")
                .arg("-c")
                .arg(sync_cmd(remote).to_command_line())
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            assert!(c.wait().unwrap().success());
            std::fs::read_to_string(dir.path().join(REMOTE_FILE)).unwrap()
        };
        assert_eq!(run("{\"a\":1}\n{\"b\":2}\n"), "{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(run("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
        // Lines another operator added stay; a line given twice goes in once; blank lines do not.
        std::fs::write(dir.path().join(REMOTE_FILE), "{\"a\":1}\n{\"x\":9}\n").unwrap();
        assert_eq!(run("{\"a\":1}\n\n{\"d\":4}\n{\"d\":4}\n"), "{\"a\":1}\n{\"x\":9}\n{\"d\":4}\n");
    }
}
