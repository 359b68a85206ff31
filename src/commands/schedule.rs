//! `schedule install|remove|status`: the scheduled teardown on this machine, as a systemd timer
//! (user or system) or, where systemd does not run, a crontab line; credentials go to an env file
//! (0600) that the unit or line reads. Install twice replaces; remove leaves nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::cli::{ScheduleCommand, ScheduleScopeArgs, ScheduleWith};
use crate::ctx::Ctx;
use crate::output::Report;
use crate::schedule::{self, CRON_MARK, UNIT};
use crate::validate;

struct Place {
    systemd: bool,
    /// `--user`: the operator's systemd instance.
    user: bool,
    unit_dir: PathBuf,
    env_file: PathBuf,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}

fn place(a: &ScheduleScopeArgs) -> Place {
    let systemd = match a.with {
        ScheduleWith::Systemd => true,
        ScheduleWith::Cron => false,
        ScheduleWith::Auto => Path::new("/run/systemd/system").is_dir(),
    };
    let user = a.user || (!a.system && !is_root());
    let config = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| home().join(".config"));
    let (unit_dir, env_file) = if user {
        (config.join("systemd/user"), config.join("munero-infra/schedule.env"))
    } else {
        (PathBuf::from("/etc/systemd/system"), PathBuf::from("/etc/munero-infra/schedule.env"))
    };
    Place { systemd, user, unit_dir, env_file }
}

fn systemctl(p: &Place, args: &[&str]) -> Result<String> {
    let mut c = Command::new("systemctl");
    if p.user {
        c.arg("--user");
    }
    let out = c.args(args).stdin(Stdio::null()).output().context("running systemctl")?;
    if !out.status.success() {
        return Err(anyhow!("systemctl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn crontab_now() -> String {
    Command::new("crontab").arg("-l").stderr(Stdio::null()).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

fn crontab_set(text: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("crontab").arg("-").stdin(Stdio::piped()).spawn().context("running crontab (install cron)")?;
    child.stdin.take().context("crontab stdin")?.write_all(text.as_bytes())?;
    let st = child.wait()?;
    if !st.success() {
        return Err(anyhow!("crontab refused the new table"));
    }
    Ok(())
}

fn without_ours(table: &str) -> String {
    table.lines().filter(|l| !l.contains(CRON_MARK)).map(|l| format!("{l}\n")).collect()
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub fn run(ctx: &Ctx, cmd: &ScheduleCommand) -> Result<Report> {
    match cmd {
        ScheduleCommand::Install(a) => install(ctx, &a.every, &a.scope),
        ScheduleCommand::Remove(a) => remove(a),
        ScheduleCommand::Status(a) => status(ctx, a),
    }
}

fn install(ctx: &Ctx, every: &str, a: &ScheduleScopeArgs) -> Result<Report> {
    let e = schedule::every(validate::window("--every", every)?).map_err(|e| crate::error::usage(e.to_string()))?;
    let p = place(a);
    let bin = std::env::current_exe().context("finding this binary")?;
    let state = ctx.store.root().to_path_buf();
    let vars: Vec<(String, String)> = schedule::CARRIED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()).map(|v| (k.to_string(), v)))
        .collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    let gha = schedule::github_actions(&e);
    let (files, doc_files): (Vec<(PathBuf, String)>, Value) = if p.systemd {
        let service = schedule::service_unit(&bin, &state, &p.env_file);
        let timer = schedule::timer_unit(&e);
        let f = vec![(p.unit_dir.join(format!("{UNIT}.service")), service), (p.unit_dir.join(format!("{UNIT}.timer")), timer)];
        let d = json!(f.iter().map(|(p, t)| json!({"path": p, "content": t})).collect::<Vec<_>>());
        (f, d)
    } else {
        let line = schedule::cron_line(&e, &bin, &state, &p.env_file, &state.join("teardown-cron.log"));
        (vec![], json!({"crontab_line": line}))
    };
    let what = if p.systemd { format!("systemd {} timer {UNIT}.timer ({})", if p.user { "user" } else { "system" }, e.on_calendar) } else { format!("crontab line ({})", e.cron) };
    let mut text = format!("{what}\ncredentials file {} (0600) with: {}\n", p.env_file.display(), if names.is_empty() { "(none set now)".to_string() } else { names.join(", ") });
    if p.systemd {
        for (path, t) in &files {
            text.push_str(&format!("\n# {}\n{t}", path.display()));
        }
    } else {
        text.push_str(&format!("\n{}\n", doc_files["crontab_line"].as_str().unwrap_or_default()));
    }
    text.push_str(&format!("\nThe same job on GitHub Actions (secrets in the repository settings):\n{gha}"));
    let mut doc = json!({"ok": true, "command": "schedule install", "dry_run": a.dry_run, "method": if p.systemd { "systemd" } else { "cron" },
                         "user": p.user, "every_s": e.seconds, "env_file": p.env_file, "env_keys": names, "files": doc_files, "github_actions": gha});
    if a.dry_run {
        return Ok(Report::new(doc, text));
    }
    if names.is_empty() {
        ctx.out.progress("warning: no provider credentials are set now (e.g. HCLOUD_TOKEN): the scheduled run can only clean up existing hosts");
    }
    write_secret(&p.env_file, &schedule::env_file(&vars))?;
    if p.systemd {
        for (path, t) in &files {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
            std::fs::write(path, t).with_context(|| format!("writing {}", path.display()))?;
        }
        let enabled = systemctl(&p, &["daemon-reload"]).and_then(|_| systemctl(&p, &["enable", "--now", &format!("{UNIT}.timer")]));
        if let Err(e) = &enabled {
            ctx.out.progress(format!("warning: the units are written but not active ({e:#}); start them with `systemctl {}enable --now {UNIT}.timer`", if p.user { "--user " } else { "" }));
        }
        doc["enabled"] = json!(enabled.is_ok());
    } else {
        let line = doc["files"]["crontab_line"].as_str().unwrap_or_default().to_string();
        crontab_set(&format!("{}{line}\n", without_ours(&crontab_now())))?;
        doc["enabled"] = json!(true);
    }
    Ok(Report::new(doc, format!("Installed: {text}")))
}

fn remove(a: &ScheduleScopeArgs) -> Result<Report> {
    let p = place(a);
    let mut removed: Vec<String> = Vec::new();
    let units = [p.unit_dir.join(format!("{UNIT}.timer")), p.unit_dir.join(format!("{UNIT}.service"))];
    // An explicit --with touches only that form; auto removes whichever is there.
    let cron_has = a.with != ScheduleWith::Systemd && crontab_now().contains(CRON_MARK);
    let units_too = a.with != ScheduleWith::Cron;
    if !a.dry_run {
        if units_too && units[0].exists() {
            let _ = systemctl(&p, &["disable", "--now", &format!("{UNIT}.timer")]);
        }
        if cron_has {
            crontab_set(&without_ours(&crontab_now()))?;
        }
    }
    let files: Vec<&PathBuf> = if units_too { units.iter().chain([&p.env_file]).collect() } else { vec![&p.env_file] };
    for f in files {
        if f.exists() {
            if !a.dry_run {
                std::fs::remove_file(f).with_context(|| format!("removing {}", f.display()))?;
            }
            removed.push(f.display().to_string());
        }
    }
    if cron_has {
        removed.push("the crontab line".into());
    }
    if !a.dry_run && units[0].parent().is_some_and(|d| d.exists()) {
        let _ = systemctl(&p, &["daemon-reload"]);
    }
    let text = if removed.is_empty() { "Nothing was installed.".to_string() } else { format!("{}: {}", if a.dry_run { "Would remove" } else { "Removed" }, removed.join(", ")) };
    Ok(Report::new(json!({"ok": true, "command": "schedule remove", "dry_run": a.dry_run, "removed": removed}), text))
}

fn status(ctx: &Ctx, a: &ScheduleScopeArgs) -> Result<Report> {
    let p = place(a);
    let timer = p.unit_dir.join(format!("{UNIT}.timer"));
    let cron = crontab_now().lines().find(|l| l.contains(CRON_MARK)).map(str::to_string);
    let method = if timer.exists() { Some("systemd") } else if cron.is_some() { Some("cron") } else { None };
    let next = if timer.exists() {
        systemctl(&p, &["list-timers", "--all", "--no-pager", &format!("{UNIT}.timer")]).ok().and_then(|o| o.lines().nth(1).map(|l| l.trim().to_string()))
    } else {
        cron.as_ref().map(|l| format!("cron: {}", l.split_whitespace().take(5).collect::<Vec<_>>().join(" ")))
    };
    let last: Option<Value> = std::fs::read_to_string(ctx.store.root().join(schedule::TEARDOWN_LOG))
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| serde_json::from_str(l).ok()));
    let human = format!(
        "scheduled teardown: {}\nnext run: {}\nlast run: {}",
        method.map(|m| format!("installed ({m})")).unwrap_or_else(|| "not installed (`munero-infra schedule install`)".into()),
        next.clone().unwrap_or_else(|| "-".into()),
        last.as_ref()
            .map(|l| format!("{} ok={} destroyed {} failed {}", l["at"].as_str().unwrap_or("?"), l["ok"], l["destroyed"], l["failed"]))
            .unwrap_or_else(|| "none recorded".into())
    );
    Ok(Report::new(json!({"ok": true, "command": "schedule status", "installed": method, "next": next, "last_run": last}), human))
}
