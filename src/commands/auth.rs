//! `auth list|add|rotate|revoke|sync <TRIAL> [USER]`: the trial's Basic Auth users. A change is
//! saved here first (a new password is never lost), then its hashes go to the host and Caddy
//! reloads them in the running container.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::auth::{self, UserSet};
use crate::cli::{AuthAction, AuthArgs, AuthListArgs};
use crate::ctx::Ctx;
use crate::output::{table, Report};
use crate::plan::auth::AuthStep;
use crate::ssh::Echo;
use crate::timefmt::rfc3339;
use crate::trial::Trial;
use crate::{plan, remote};

pub async fn run(ctx: &Ctx, args: &AuthArgs) -> Result<Report> {
    let (verb, trial, dry_run) = match &args.action {
        AuthAction::List(a) => return list(ctx, a),
        AuthAction::Add(a) => ("add", &a.trial, a.dry_run),
        AuthAction::Rotate(a) => ("rotate", &a.trial, a.dry_run),
        AuthAction::Revoke(a) => ("revoke", &a.trial, a.dry_run),
        AuthAction::Sync(a) => ("sync", &a.trial, a.dry_run),
    };
    let _lock = crate::lock::for_command(ctx, trial, "auth", dry_run)?;
    let t = remote::load_trial(ctx, trial)?;
    let mut set = auth::load(ctx, &t)?;
    // Before the first deploy there is no stack to change: the set waits here for deploy.
    let deployed = remote::load_credentials(ctx, &t)?.is_some() || !set.users.is_empty() || set.locked;
    let now = rfc3339(ctx.now.unix_timestamp());
    let (changed, shown) = match &args.action {
        AuthAction::Add(a) => {
            let pw = set.add(&a.user, &now)?.password.clone();
            (vec![a.user.clone()], a.show.then_some(pw))
        }
        AuthAction::Rotate(a) => {
            let pw = set.rotate(&a.user, &now)?.password.clone();
            (vec![a.user.clone()], a.show.then_some(pw))
        }
        AuthAction::Revoke(a) => (set.revoke(a.user.as_deref(), a.all)?, None),
        _ => (Vec::new(), None),
    };
    let steps = steps(ctx, &t, &set, deployed)?;
    let text = plan::render(&steps);
    let mut doc = json!({"ok": true, "command": "auth", "action": verb, "trial": t.name, "dry_run": dry_run,
                         "changed": changed, "users": set.names(), "locked": set.locked, "plan": steps});
    if dry_run {
        ctx.out.progress(format!("Plan for auth {verb} on trial {} (dry run: nothing is changed):", t.name));
        return Ok(Report::new(doc, text));
    }
    auth::save(ctx, &t, &set)?;
    if deployed {
        apply(ctx, &t, &set, &steps).await.with_context(|| {
            format!("the new users of {} are saved here but not on its host; run `auth sync {}`", t.name, t.name)
        })?;
    }
    let file = remote::trial_path(ctx, &t, auth::USERS_FILE);
    let mut human = match verb {
        "add" => format!("User {} added to trial {}; password in {} (mode 0600).", changed[0], t.name, file.display()),
        "rotate" => format!("New password for {} on trial {}; the old one no longer works; password in {}.", changed[0], t.name, file.display()),
        "revoke" if set.locked => format!("Revoked {}: trial {} is locked (every request gets 401) until `auth add`.", changed.join(", "), t.name),
        "revoke" => format!("Revoked {} on trial {}.", changed.join(", "), t.name),
        _ => format!("Users of trial {} sent to its host: {}.", t.name, set.names().join(", ")),
    };
    if !deployed {
        human.push_str(" The trial is not deployed yet: deploy sends these users.");
    }
    if let Some(pw) = shown {
        human.push_str(&format!("\nPassword: {pw}"));
        doc["password"] = Value::String(pw);
    }
    doc["applied_on_host"] = json!(deployed);
    Ok(Report::new(doc, human))
}

fn steps(ctx: &Ctx, t: &Trial, set: &UserSet, deployed: bool) -> Result<Vec<AuthStep>> {
    let mut s = vec![AuthStep::SaveLocal { file: remote::trial_path(ctx, t, auth::USERS_FILE), users: set.names(), locked: set.locked }];
    if deployed {
        let host = remote::ssh_host(t)?;
        let dir = remote::remote_dir(t);
        s.push(AuthStep::PutUsers { host: host.clone(), remote: auth::remote_users_path(&dir), users: set.names() });
        s.push(AuthStep::Reload { host, cmd: auth::reload_cmd(&dir, t.gpu) });
    }
    Ok(s)
}

async fn apply(ctx: &Ctx, t: &Trial, set: &UserSet, steps: &[AuthStep]) -> Result<()> {
    let file = set.caddy_file()?;
    let s = remote::connect(ctx, t).await?;
    let mut r = Ok(());
    for step in steps {
        r = match step {
            AuthStep::SaveLocal { .. } => Ok(()),
            AuthStep::PutUsers { remote, .. } => crate::ssh::upload::put_bytes(&s, remote, file.as_bytes(), 0o600).await,
            AuthStep::Reload { cmd, .. } => s.run_with(cmd, None::<tokio::io::Empty>, Echo::Capture).await.map(|o| {
                let said = o.stdout_str();
                if !said.trim().is_empty() {
                    ctx.out.progress(said.trim());
                }
            }),
        };
        if r.is_err() {
            break;
        }
    }
    s.close().await;
    r
}

fn list(ctx: &Ctx, a: &AuthListArgs) -> Result<Report> {
    let t = remote::load_trial(ctx, &a.trial)?;
    let set = auth::load(ctx, &t)?;
    let users: Vec<Value> = set
        .users
        .iter()
        .map(|u| {
            let mut v = json!({"user": u.name, "since": u.since});
            if a.show {
                v["password"] = json!(u.password);
            }
            v
        })
        .collect();
    let mut headers = vec!["USER", "SINCE"];
    if a.show {
        headers.push("PASSWORD");
    }
    let rows: Vec<Vec<String>> = set
        .users
        .iter()
        .map(|u| {
            let mut r = vec![u.name.clone(), if u.since.is_empty() { "first deploy".into() } else { u.since.clone() }];
            if a.show {
                r.push(u.password.clone());
            }
            r
        })
        .collect();
    let human = if set.users.is_empty() {
        if set.locked { format!("Trial {} is locked: no users (every request gets 401).", t.name) } else { format!("Trial {} has no users yet: deploy creates the first.", t.name) }
    } else {
        table(&headers, &rows)
    };
    Ok(Report::new(json!({"ok": true, "command": "auth", "action": "list", "trial": t.name, "locked": set.locked, "users": users}), human))
}
