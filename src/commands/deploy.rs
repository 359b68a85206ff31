//! `deploy <TRIAL>`: build the plan (steps 1-8 as data), print it on --dry-run, else walk it
//! over one SSH connection with the pinned host key.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::deploy::env::{self, EnvFile, Generated};
use crate::deploy::{self, bundle, checks, Step};
use crate::error::usage;
use crate::output::Report;
use crate::remote;
use crate::ssh::upload::{self, UploadOptions};
use crate::ssh::{Echo, RemoteCmd, Session};
use crate::trial::Trial;
use crate::Ctx;

#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    pub trial: String,
    /// The client's SQLite database (default: the bundled sample dataset).
    #[arg(long, value_name = "FILE.sqlite")]
    pub data: Option<PathBuf>,
    /// Env file for the stack (default: the bundle's .env.example); generated values are merged in.
    #[arg(long, value_name = "FILE")]
    pub env: Option<PathBuf>,
    /// Ollama model to serve (default: OLLAMA_MODEL of the env file, else munero.toml, else qwen2.5-coder:3b).
    #[arg(long)]
    pub model: Option<String>,
    /// Build the images here and stream them with `docker save | docker load` (no build on the host).
    #[arg(long)]
    pub ship_images: bool,
    /// Checkout with backend/ and frontend/ (default: the repository this binary was built from).
    #[arg(long, value_name = "DIR")]
    pub app_dir: Option<PathBuf>,
    /// Run only these steps of the plan (comma separated ids as --dry-run shows them).
    #[arg(long, value_delimiter = ',', value_name = "STEP")]
    pub only: Vec<String>,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub const SAMPLE_ROWS: &str = "300000";

/// The bundled sample dataset: generated on first use with the backend's own generator (embedded
/// in this binary) into the state dir, so no large binary lives in git.
pub fn sample_dataset(ctx: &Ctx, create: bool) -> Result<PathBuf> {
    let dir = ctx.store.root().join("sample");
    let path = dir.join(format!("munero-sample-{SAMPLE_ROWS}.sqlite"));
    if path.exists() || !create {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("make_sample_db.py");
    std::fs::write(&script, include_str!("../../backend/scripts/make_sample_db.py"))?;
    ctx.out.progress(format!("generating the sample dataset ({SAMPLE_ROWS} orders) -> {}", path.display()));
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(["--rows", SAMPLE_ROWS, "--seed", "42", "--end", "2025-12-31", "--out"])
        .arg(&path)
        .output()
        .context("running python3 to generate the sample dataset (or pass --data FILE.sqlite)")?;
    if !out.status.success() {
        bail!(
            "generating the sample dataset failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(path)
}

/// Everything the plan and the executor need, decided before anything runs.
struct Prepared {
    trial: Trial,
    inputs: deploy::DeployInputs,
    env: EnvFile,
    creds_user: String,
    creds_password: Option<String>,
}

fn prepare(ctx: &Ctx, args: &DeployArgs, write_state: bool) -> Result<Prepared> {
    let trial = remote::load_trial(ctx, &args.trial)?;
    for o in &args.only {
        if !deploy::STEP_IDS.contains(&o.as_str()) {
            return Err(usage(format!("--only {o}: unknown step; steps are {}", deploy::STEP_IDS.join(", "))));
        }
    }
    let (data, sample) = match &args.data {
        Some(d) => (d.clone(), false),
        None => (sample_dataset(ctx, write_state && wants(args, "check-data") || write_state && wants(args, "upload-data"))?, true),
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
    let (user, hash, password) = if write_state {
        let c = remote::ensure_credentials(ctx, &trial)?;
        (c.user, c.bcrypt_hash, Some(c.password))
    } else {
        match remote::load_credentials(ctx, &trial)? {
            Some(c) => (c.user, c.bcrypt_hash, Some(c.password)),
            None => (trial.name.clone(), "(generated at deploy)".to_string(), None),
        }
    };
    let gen = Generated {
        domain: remote::site_name(&trial)?,
        tls: remote::tls_mode(&trial).to_string(),
        basic_auth_user: user.clone(),
        basic_auth_hash: hash,
        model: args.model.clone().or_else(|| ctx.config.model.clone()),
        gpu: trial.gpu,
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
        data_is_sample: sample,
        env_file: args.env.clone(),
        env_keys: merged.keys(),
        remote_dir: remote::remote_dir(&trial),
        gpu: trial.gpu,
        app_dir,
        ship_images: args.ship_images,
        model,
        url: remote::url(&trial)?,
        probe_host: remote::ssh_host(&trial)?,
        ssh_port: remote::ssh_port(&trial),
    };
    Ok(Prepared { trial, inputs, env: merged, creds_user: user, creds_password: password })
}

fn wants(args: &DeployArgs, id: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|o| o == id)
}

pub async fn run(ctx: &Ctx, args: &DeployArgs) -> Result<Report> {
    let _lock = crate::lock::for_command(ctx, &args.trial, "deploy", args.dry_run)?;
    let prep = prepare(ctx, args, !args.dry_run)?;
    let steps = deploy::filter_plan(deploy::deploy_plan(&prep.inputs), &args.only);
    let text = deploy::render(&steps);
    if args.dry_run {
        ctx.out.progress(format!("Plan to deploy trial {} (dry run: nothing is changed):", prep.trial.name));
        return Ok(Report::new(
            json!({"ok": true, "command": "deploy", "dry_run": true, "trial": prep.trial.name,
                   "plan": steps, "plan_text": text}),
            text,
        ));
    }

    let mut exec = Executor { ctx, prep: &prep, sess: None, results: serde_json::Map::new() };
    let total = steps.len();
    let started = Instant::now();
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{total}] [{}] {step}", i + 1, step.id()));
        exec.step(step).await.with_context(|| format!("deploy step {} ({}) failed", i + 1, step.id()))?;
    }
    if let Some(s) = exec.sess.take() {
        s.close().await;
    }
    let url = prep.inputs.url.clone();
    let creds = remote::credentials_path(ctx, &prep.trial);
    let human = format!(
        "Trial {} deployed in {:.0}s: {url}\nBasic Auth user {}; password in {} (mode 0600).",
        prep.trial.name,
        started.elapsed().as_secs_f64(),
        prep.creds_user,
        creds.display()
    );
    Ok(Report::new(
        json!({"ok": true, "command": "deploy", "dry_run": false, "trial": prep.trial.name, "url": url,
               "credentials_file": creds, "basic_auth_user": prep.creds_user,
               "steps": steps.iter().map(|s| s.id()).collect::<Vec<_>>(), "results": Value::Object(exec.results)}),
        human,
    ))
}

struct Executor<'a> {
    ctx: &'a Ctx,
    prep: &'a Prepared,
    sess: Option<Session>,
    results: serde_json::Map<String, Value>,
}

impl Executor<'_> {
    async fn session(&mut self) -> Result<&Session> {
        if self.sess.is_none() {
            self.sess = Some(remote::connect(self.ctx, &self.prep.trial).await?);
        }
        Ok(self.sess.as_ref().unwrap())
    }

    async fn step(&mut self, step: &Step) -> Result<()> {
        let ctx = self.ctx;
        let rd = self.prep.inputs.remote_dir.clone();
        let gpu = self.prep.inputs.gpu;
        match step {
            Step::CheckData { path, .. } => {
                let c = checks::check_sqlite(path)?;
                ctx.out.progress(format!("      ok: {} tables, {}", c.tables, upload::human_bytes(c.bytes)));
                self.results.insert("data".into(), json!(c));
            }
            Step::CheckEnv { .. } => {
                let missing = self.prep.env.missing_required();
                if !missing.is_empty() {
                    return Err(usage(format!(
                        "the env is missing required keys: {} (set them in the --env file{})",
                        missing.join(", "),
                        if missing.iter().any(|k| k == "ACME_EMAIL") { ", or acme_email in munero.toml" } else { "" }
                    )));
                }
                ctx.out.progress(format!("      ok: {} keys", self.prep.env.keys().len()));
            }
            Step::WaitCloudInit { gpu } => {
                let marker = self.prep.trial.provider != "ssh";
                self.wait_cloud_init(*gpu, marker).await?;
            }
            Step::UploadData { local, remote } => {
                let opts = UploadOptions {
                    hash_cache: Some(ctx.store.root().join("upload-hashes.json")),
                    progress_bar: true,
                    ..Default::default()
                };
                let s = self.session().await?;
                let r = upload::upload_file(s, local, remote, &opts).await?;
                if r.skipped {
                    ctx.out.progress(format!("      skipped: the host already holds sha256 {}", r.sha256));
                } else {
                    ctx.out.progress(format!(
                        "      uploaded {} (sent {}{}), sha256 {} verified on the host",
                        upload::human_bytes(r.size),
                        upload::human_bytes(r.bytes_sent),
                        if r.resumed_from > 0 { format!(", resumed at {}", upload::human_bytes(r.resumed_from)) } else { String::new() },
                        r.sha256
                    ));
                }
                self.results.insert("upload".into(), json!(r));
            }
            Step::UploadBundle { remote_dir, app_dir, .. } => {
                let s = self.session().await?;
                for f in bundle::files() {
                    upload::put_bytes(s, &format!("{remote_dir}/deploy/{}", f.path), f.contents, f.mode).await?;
                }
                if let Some(dir) = app_dir {
                    send_build_contexts(s, dir, remote_dir).await?;
                }
                ctx.out.progress(format!("      ok: {} stack files{}", bundle::files().len(), if app_dir.is_some() { " + backend/ frontend/" } else { "" }));
            }
            Step::UploadEnv { remote, .. } => {
                let text = self.prep.env.render();
                let s = self.session().await?;
                upload::put_bytes(s, remote, text.as_bytes(), 0o600).await?;
                let mode = s.run(&RemoteCmd::argv(["stat", "-c", "%a", remote])).await?.stdout_str();
                if mode.trim() != "600" {
                    bail!("{remote} has mode {} on the host, expected 600", mode.trim());
                }
                ctx.out.progress("      ok: mode 0600");
            }
            Step::ShipImages { app_dir, images } => {
                self.ship_images(app_dir, images).await?;
            }
            Step::ComposeUp { remote_dir, gpu, build } => {
                let s = self.session().await?;
                s.run_with(&deploy::compose_up_cmd(remote_dir, *gpu, *build), None::<tokio::io::Empty>, Echo::Progress)
                    .await?;
            }
            Step::LoadData { .. } => {
                let s = self.session().await?;
                s.run_with(&deploy::load_data_cmd(&rd), None::<tokio::io::Empty>, Echo::Progress).await?;
            }
            Step::PullModel { model } => {
                let s = self.session().await?;
                s.run_with(&deploy::pull_model_cmd(&rd, gpu, model), None::<tokio::io::Empty>, Echo::Progress)
                    .await?;
            }
            Step::WaitHealthy { .. } | Step::Smoke { .. } | Step::ExposureProbe { .. } => {
                let password = self.prep.creds_password.clone().ok_or_else(|| anyhow!("no Basic Auth credentials"))?;
                let trial = self.prep.trial.clone();
                let user = self.prep.creds_user.clone();
                let s = self.session().await?;
                let v = super::smoke::run_step(ctx, &trial, s, step, &user, &password).await?;
                self.results.insert(step.id().into(), v);
            }
        }
        Ok(())
    }

    async fn wait_cloud_init(&mut self, gpu: bool, marker: bool) -> Result<()> {
        let timeout = Duration::from_secs(
            std::env::var("MUNERO_CLOUD_INIT_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(1800),
        );
        let start = Instant::now();
        let check = cloud_init_check_cmd(gpu, marker);
        let mut last = String::new();
        loop {
            if self.sess.is_none() {
                match remote::connect(self.ctx, &self.prep.trial).await {
                    Ok(s) => self.sess = Some(s),
                    Err(e) => {
                        // A pinned-key mismatch is final; anything else may be the reboot.
                        if e.chain().any(|c| c.downcast_ref::<crate::ssh::HostKeyMismatch>().is_some()) {
                            return Err(e);
                        }
                        last = format!("{e:#}");
                    }
                }
            }
            if let Some(s) = &self.sess {
                match s.exec(&check).await {
                    Ok(out) if out.status == Some(0) => {
                        let first = out.stdout_str().lines().next().unwrap_or("").to_string();
                        self.ctx.out.progress(format!("      ok: {first}"));
                        return Ok(());
                    }
                    Ok(out) if out.status == Some(3) => last = out.stdout_str().trim().to_string(),
                    Ok(out) => {
                        bail!(
                            "cloud-init failed on the host:\n{}{}",
                            out.stdout_str(),
                            crate::ssh::tail_lines(&out.stderr_str(), 40)
                        )
                    }
                    Err(e) => {
                        last = format!("{e:#}");
                        self.sess = None;
                    }
                }
            }
            if start.elapsed() > timeout {
                bail!("the host was not ready after {}s (last: {last})", timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    async fn ship_images(&mut self, app_dir: &Path, images: &[String]) -> Result<()> {
        // Build with the local engine from the checkout's own compose file, with the merged env
        // in a private temp file (compose refuses to start without the required variables).
        let tmp = std::env::temp_dir().join(format!("munero-ship-{}.env", std::process::id()));
        crate::store::atomic_write(&tmp, self.prep.env.render().as_bytes(), 0o600)?;
        let compose = app_dir.join("deploy/docker-compose.yml");
        let st = tokio::process::Command::new("docker")
            .args(["compose", "-f"])
            .arg(&compose)
            .arg("--env-file")
            .arg(&tmp)
            .args(["build", "backend", "frontend"])
            .status()
            .await;
        let _ = std::fs::remove_file(&tmp);
        if !st.context("running docker compose build here")?.success() {
            bail!("building the images locally failed (see the output above)");
        }
        let mut save = tokio::process::Command::new("docker")
            .arg("save")
            .args(images)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("running docker save")?;
        let stdout = save.stdout.take().context("docker save stdout")?;
        let s = self.session().await?;
        s.run_with(&RemoteCmd::argv(["docker", "load"]), Some(stdout), Echo::Progress).await?;
        if !save.wait().await?.success() {
            bail!("docker save failed");
        }
        Ok(())
    }
}

/// Exit 0 ready, 3 not yet, anything else: cloud-init failed (its log tail on stderr).
pub fn cloud_init_check_cmd(gpu: bool, marker: bool) -> RemoteCmd {
    let gpu_check = if gpu { " && nvidia-smi >/dev/null 2>&1" } else { "" };
    RemoteCmd::shell(format!(
        "if [ -f /var/lib/munero/ready ]{gpu_check}; then echo \"ready since $(cat /var/lib/munero/ready)\"; exit 0; fi; \
         if ! command -v cloud-init >/dev/null 2>&1; then \
           if [ {marker} = 1 ]; then echo 'waiting for the ready marker'; exit 3; fi; \
           echo 'no cloud-init on this host: nothing to wait for'; exit 0; fi; \
         if [ ! -f /var/lib/cloud/instance/boot-finished ]; then \
           if [ {marker} = 0 ]; then s=$(cloud-init status 2>/dev/null); case \"$s\" in \
             *disabled*|*'not run'*|*'not started'*) echo \"cloud-init is installed but not in use on this host ($s): nothing to wait for\"; exit 0;; esac; fi; \
           echo 'cloud-init still running'; exit 3; fi; \
         out=$(cloud-init status --long 2>&1); rc=$?; \
         if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then echo \"$out\"; tail -n 40 /var/log/cloud-init-output.log >&2 2>/dev/null; exit 1; fi; \
         if [ {marker} = 1 ]; then echo 'cloud-init done; waiting for the ready marker{gpu_note}'; exit 3; fi; \
         echo 'cloud-init finished'; exit 0",
        marker = if marker { 1 } else { 0 },
        gpu_note = if gpu { " (after the NVIDIA driver reboot)" } else { "" },
    ))
}

/// `tar` of backend/ and frontend/ (without dependencies, caches and local data) streamed into
/// the stack directory on the host.
async fn send_build_contexts(s: &Session, app_dir: &Path, remote_dir: &str) -> Result<()> {
    if !app_dir.join("backend").is_dir() || !app_dir.join("frontend").is_dir() {
        return Err(usage(format!(
            "{}: no backend/ and frontend/ to build from; pass --app-dir CHECKOUT or --ship-images",
            app_dir.display()
        )));
    }
    let mut cmd = tokio::process::Command::new("tar");
    cmd.arg("-C").arg(app_dir);
    for e in bundle::CONTEXT_EXCLUDES {
        cmd.arg(format!("--exclude={e}"));
    }
    cmd.args(["-cf", "-", "backend", "frontend"]).stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().context("running tar for the build contexts")?;
    let stdout = child.stdout.take().context("tar stdout")?;
    let dir = crate::ssh::quote(remote_dir);
    let remote = RemoteCmd::shell(format!(
        "mkdir -p {dir} && cd {dir} && rm -rf backend.new frontend.new && mkdir backend.new && \
         tar -xf - --no-same-owner -C backend.new && rm -rf backend frontend && \
         mv backend.new/backend backend && mv backend.new/frontend frontend && rmdir backend.new"
    ));
    s.run_with(&remote, Some(stdout), Echo::Capture).await?;
    if !child.wait().await?.success() {
        bail!("tar of {} failed", app_dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cloud_init_check_cmd;

    fn run(script: &str, path: &str) -> (i32, String) {
        let out = std::process::Command::new("bash").arg("-c").arg(script).env("PATH", path).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// An existing host (no ready marker expected) with cloud-init installed but never run must
    /// not be waited for; a cloud VM (marker expected) keeps waiting.
    #[test]
    fn existing_host_with_idle_cloud_init_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("cloud-init");
        std::fs::write(&fake, "#!/bin/sh\necho 'status: disabled'\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        if std::path::Path::new("/var/lib/cloud/instance/boot-finished").exists()
            || std::path::Path::new("/var/lib/munero/ready").exists()
        {
            return; // a real cloud host: the branch under test is not reachable here
        }
        let path = format!("{}:/usr/bin:/bin", dir.path().display());
        let (rc, out) = run(&cloud_init_check_cmd(false, false).to_command_line(), &path);
        assert_eq!(rc, 0, "{out}");
        assert!(out.contains("not in use on this host (status: disabled)"), "{out}");
        let (rc, out) = run(&cloud_init_check_cmd(false, true).to_command_line(), &path);
        assert_eq!(rc, 3, "{out}");
    }
}
