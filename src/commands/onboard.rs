//! `onboard <TRIAL>`: the client's onboarding message, its example questions built from the
//! deployed dataset (the backend's profile and examples, asked over the trial's public URL with
//! Basic Auth); `--self-test` asks the deployed assistant each question and reports which answer.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::cli::{MessageFormat, OnboardArgs};
use crate::ctx::Ctx;
use crate::deploy::verify;
use crate::error::usage;
use crate::onboard::{self, Examples, Format, Message, Profile};
use crate::output::Report;
use crate::smoke::Site;
use crate::{auth, remote};

pub async fn run(ctx: &Ctx, args: &OnboardArgs) -> Result<Report> {
    let t = remote::load_trial(ctx, &args.trial)?;
    let set = auth::load(ctx, &t)?;
    let u = match &args.user {
        Some(n) => set.get(n).ok_or_else(|| usage(format!("no user {n} on trial {} (users: {})", t.name, set.names().join(", "))))?,
        None => set.first().ok_or_else(|| usage(format!("trial {} has no users: deploy it, or `auth add {} USER`", t.name, t.name)))?,
    };
    // The backend is asked with the first user: the client's own may not exist on the host yet.
    let login = set.first().expect("checked above");
    let s = remote::connect(ctx, &t).await?;
    let pem = verify::caddy_root(ctx, &t, &s).await;
    s.close().await;
    let site = Site {
        name: remote::site_name(&t)?,
        connect: remote::ssh_host(&t)?.parse().ok(),
        port: 443,
        user: login.name.clone(),
        password: login.password.clone(),
        extra_root_pem: pem?,
        accept_untrusted: remote::tls_mode(&t) == crate::site::Tls::AcmeStaging,
    };
    let http = site.client(Duration::from_secs(30))?;
    let base = site.base_url();
    let get = |path: &'static str| {
        let req = http.get(format!("{base}{path}")).basic_auth(&site.user, Some(&site.password));
        async move {
            let r = req.send().await.with_context(|| format!("asking the trial's backend for {path}"))?;
            let st = r.status();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if !st.is_success() {
                return Err(anyhow!("{path} answered {st}: {}", v["detail"].as_str().unwrap_or("")));
            }
            Ok(v)
        }
    };
    let profile: Profile = serde_json::from_value(get("api/dashboard/profile").await?).context("reading the profile")?;
    let examples: Examples = serde_json::from_value(get("api/chat/examples").await?).context("reading the examples")?;
    let questions = onboard::questions(&profile, &examples);
    let (dataset, measures, dimensions) = Message::from_profile(&profile);
    let msg = Message {
        trial: t.name.clone(),
        url: remote::url(&t)?,
        user: u.name.clone(),
        password: args.include_password.then(|| u.password.clone()),
        own_ca: remote::tls_mode(&t) != crate::site::Tls::Acme,
        dataset,
        measures,
        dimensions,
        questions: questions.clone(),
        feedback: ctx.config.feedback_email.clone(),
        ends: t.expires.get(..10).unwrap_or(&t.expires).to_string(),
    };
    let format = match args.format {
        MessageFormat::Text => Format::Text,
        MessageFormat::Markdown => Format::Markdown,
        MessageFormat::Html => Format::Html,
    };
    let text = onboard::render(&msg, format);
    let warnings: Vec<String> = remote::tls_mode(&t).browser_warning().map(str::to_string).into_iter().collect();
    let warnings = ctx.out.warn_all(warnings);
    let mut doc = json!({"ok": true, "command": "onboard", "trial": t.name, "user": u.name, "questions": questions,
                         "password_included": args.include_password, "message": text});
    if !args.self_test {
        return Ok(Report::new(doc, text).with_warnings(&warnings));
    }
    let mut results = Vec::new();
    let mut lines = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        ctx.out.progress(format!("[{}/{}] asking example question {}", i + 1, questions.len(), i + 1));
        let r = http.post(format!("{base}api/chat/")).basic_auth(&site.user, Some(&site.password)).json(&json!({"question": q}));
        let verdict = match r.timeout(Duration::from_secs(300)).send().await {
            Ok(resp) => {
                let st = resp.status().as_u16();
                onboard::answered(st, &resp.json().await.unwrap_or(Value::Null))
            }
            Err(e) => Err(format!("{e}")),
        };
        lines.push(match &verdict {
            Ok(n) => format!("ok    {}. {q} ({n} rows)", i + 1),
            Err(e) => format!("FAIL  {}. {q}: {e}", i + 1),
        });
        results.push(json!({"question": q, "ok": verdict.is_ok(), "rows": verdict.as_ref().ok(), "error": verdict.err()}));
    }
    let failed = results.iter().filter(|r| r["ok"] != true).count();
    doc["ok"] = json!(failed == 0);
    doc["self_test"] = json!(results);
    let mut rep = Report::new(doc, format!("{}\n{} of {} example questions answered.", lines.join("\n"), questions.len() - failed, questions.len()));
    rep.exit_code = u8::from(failed > 0);
    Ok(rep.with_warnings(&warnings))
}
