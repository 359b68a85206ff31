//! `deploy <TRIAL>`: arguments + the trial's record -> deploy inputs -> the plan (steps 1-8 as
//! data) -> print it on --dry-run, else walk it over one SSH connection with the pinned host key.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::DeployArgs;
use crate::ctx::Ctx;
use crate::deploy::env::{self, EnvFile, Generated};
use crate::deploy::run::{self, Deploy};
use crate::deploy::{self, bundle, checks, sample};
use crate::error::usage;
use crate::output::Report;
use crate::trial::Trial;
use crate::{auth, hosts, remote};

/// Everything the plan and the executor need, decided before anything runs.
struct Prepared {
    trial: Trial,
    inputs: deploy::DeployInputs,
    env: EnvFile,
    creds_user: String,
    creds_password: Option<String>,
    users_file: String,
}

fn prepare(ctx: &Ctx, args: &DeployArgs, write_state: bool) -> Result<Prepared> {
    let trial = remote::load_trial(ctx, &args.trial)?;
    for o in &args.only {
        if !deploy::STEP_IDS.contains(&o.as_str()) {
            return Err(usage(format!("--only {o}: unknown step; steps are {}", deploy::STEP_IDS.join(", "))));
        }
    }
    let (data, is_sample) = match &args.data {
        Some(d) => {
            checks::check_data_file(d)?;
            (d.clone(), false)
        }
        None => {
            let make = write_state && (wants(args, "check-data") || wants(args, "upload-data"));
            (sample::sample_dataset(ctx.store.root(), make, |m| ctx.out.progress(m))?, true)
        }
    };
    let base = match &args.env {
        Some(p) => {
            if !p.is_file() {
                return Err(usage(format!("--env {}: no such file", p.display())));
            }
            EnvFile::load(p)?
        }
        None => EnvFile::parse(bundle::env_example())?,
    };
    let (user, hash, password, users) = if write_state {
        let (c, set) = auth::for_deploy(ctx, &trial)?;
        (c.user, c.bcrypt_hash, Some(c.password), set)
    } else {
        match remote::load_credentials(ctx, &trial)? {
            Some(c) => (c.user, c.bcrypt_hash, Some(c.password), auth::load(ctx, &trial)?),
            None => (trial.name.clone(), "(generated at deploy)".to_string(), None, auth::UserSet::default()),
        }
    };
    let auth_users = if users.users.is_empty() && !users.locked { vec![user.clone()] } else { users.names() };
    let users_file = if write_state { users.caddy_file()? } else { String::new() };
    let gen = Generated {
        domain: remote::site_name(&trial)?,
        tls: if remote::tls_mode(&trial).is_acme() { "acme" } else { "internal" }.to_string(),
        acme_ca: remote::tls_mode(&trial).directory().map(str::to_string),
        basic_auth_user: user.clone(),
        basic_auth_hash: hash,
        model: args.model.clone().or_else(|| ctx.config.model.clone()),
        gpu: trial.gpu,
        emulated: trial.software_emulated(),
    };
    let mut merged = env::merge(&base, &gen, args.env.is_some());
    if merged.get("ACME_EMAIL").map_or(true, |v| v.is_empty()) {
        if let Some(e) = &ctx.config.acme_email {
            merged.set("ACME_EMAIL", e);
        }
    }
    let model = merged.get("OLLAMA_MODEL").unwrap_or(env::DEFAULT_MODEL).to_string();
    let app_dir = bundle::find_app_dir(args.app_dir.as_deref())
        .or_else(|e| if args.app_dir.is_some() { Err(e) } else { Ok(PathBuf::from("(no checkout found: pass --app-dir)")) })?;
    let inputs = deploy::DeployInputs {
        data,
        data_is_sample: is_sample,
        env_file: args.env.clone(),
        env_keys: merged.keys(),
        remote_dir: remote::remote_dir(&trial),
        gpu: trial.gpu,
        app_dir: app_dir.clone(),
        ship_images: args.ship_images,
        require_model: args.require_model,
        ship_model: match &args.ship_model {
            Some(dir) => {
                let store = deploy::model::store_dir(dir);
                Some((store.clone(), deploy::model::model_files(&store, &model)?))
            }
            None => None,
        },
        image_builds: if args.ship_images { deploy::app_build_argvs(&merged, &app_dir) } else { vec![] },
        shipped_images: if args.ship_images { deploy::images_to_ship(&merged, local_image) } else { vec![] },

        model,
        url: remote::url(&trial)?,
        // A first certificate takes the CA a minute or two; give it five.
        site: remote::site_spec(&trial, 300)?,
        probe_host: remote::ssh_host(&trial)?,
        ssh_port: remote::ssh_port(&trial),
        forwards: trial.forwards.clone(),
        ready_marker: hosts::connect(trial.provider, true)?.boots_our_cloud_init(),
        cloud_init_timeout_s: std::env::var("MUNERO_CLOUD_INIT_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(1800),
        auth_users,
        min_tps: ctx.config.min_tps()?,
        force: args.force,
    };
    Ok(Prepared { trial, inputs, env: merged, creds_user: user, creds_password: password, users_file })
}

/// Whether this machine's Docker engine holds `image`.
fn local_image(image: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wants(args: &DeployArgs, id: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|o| o == id)
}

pub async fn run(ctx: &Ctx, args: &DeployArgs) -> Result<Report> {
    let _lock = crate::lock::for_command(ctx, &args.trial, "deploy", args.dry_run)?;
    let prep = prepare(ctx, args, !args.dry_run)?;
    let steps = deploy::filter_plan(deploy::deploy_plan(&prep.inputs), &args.only);
    let text = deploy::render(&steps);
    // Said before and after: the operator must know what the client's first click will show.
    let tls = remote::tls_mode(&prep.trial);
    let warnings: Vec<String> = tls.browser_warning().map(str::to_string).into_iter().collect();
    if args.dry_run {
        ctx.out.progress(format!("Plan to deploy trial {} (dry run: nothing is changed):", prep.trial.name));
        return Ok(Report::new(
            json!({"ok": true, "command": "deploy", "dry_run": true, "trial": prep.trial.name, "tls": tls,
                   "plan": steps, "plan_text": text}),
            text,
        )
        .with_warnings(&ctx.out.warn_all(warnings)));
    }
    let started = Instant::now();
    let d = Deploy {
        ctx,
        trial: &prep.trial,
        env: &prep.env,
        user: prep.creds_user.clone(),
        password: prep.creds_password.clone(),
        users_file: prep.users_file.clone(),
        trust_ca: crate::validate::trust_ca(args.trust_ca.as_deref())?,
    };
    let results = run::run(&d, &steps).await?;
    let warnings = ctx.out.warn_all(warnings);
    let url = prep.inputs.url.clone();
    let creds = remote::credentials_path(ctx, &prep.trial);
    let human = match deploy::not_deployed_summary(&prep.trial.name, &steps) {
        Some(ran) => format!("{ran} ({:.0}s).", started.elapsed().as_secs_f64()),
        None => format!(
            "Trial {} deployed in {:.0}s: {url}\nBasic Auth user {}; password in {} (mode 0600).",
            prep.trial.name,
            started.elapsed().as_secs_f64(),
            prep.creds_user,
            creds.display()
        ),
    };
    Ok(Report::new(
        json!({"ok": true, "command": "deploy", "dry_run": false, "deployed": deploy::brings_stack_up(&steps),
               "app_revision": crate::audit::git_revision(&prep.inputs.app_dir),
               "trial": prep.trial.name, "url": url, "tls": tls,
               "credentials_file": creds, "basic_auth_user": prep.creds_user,
               "steps": steps.iter().map(|s| s.id()).collect::<Vec<_>>(), "plan": steps,
               "results": Value::Object(results)}),
        human,
    )
    .with_warnings(&warnings))
}
