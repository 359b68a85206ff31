//! Walks a deploy plan over one SSH connection with the pinned host key: each remote step runs
//! the command it carries, so what `--dry-run` printed is what runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::deploy::env::EnvFile;
use crate::deploy::{bundle, checks, record, snapshot, verify, Step};
use crate::error::usage;
use crate::remote;
use crate::ssh::upload::{self, UploadOptions};
use crate::ssh::{Echo, RemoteCmd, Session};
use crate::trial::Trial;

/// What the steps need besides themselves: the trial, the merged env, the Basic Auth login.
pub struct Deploy<'a> {
    pub ctx: &'a Ctx,
    pub trial: &'a Trial,
    pub env: &'a EnvFile,
    pub user: String,
    pub password: Option<String>,
    /// The Basic Auth users file Caddy imports (bcrypt hashes only).
    pub users_file: String,
    /// `--trust-ca`: a root the operator vouches for when the site's certificate is checked.
    pub trust_ca: Option<Vec<u8>>,
}

/// Walk the steps; returns each step's result by id.
pub async fn run(d: &Deploy<'_>, steps: &[Step]) -> Result<serde_json::Map<String, Value>> {
    let trust = verify::Trust::new(d.trust_ca.clone());
    let mut ex = Executor { d, sess: None, results: serde_json::Map::new(), record: None, skipped: Vec::new(), trust, model: None };
    let total = steps.len();
    let mut seconds = serde_json::Map::new();
    for (i, step) in steps.iter().enumerate() {
        d.ctx.out.progress(format!("[{}/{total}] [{}] {}", i + 1, step.id(), crate::plan::headline(step)));
        let t0 = Instant::now();
        ex.step(step).await.with_context(|| format!("deploy step {} ({}) failed", i + 1, step.id()))?;
        seconds.insert(step.id().into(), json!((t0.elapsed().as_secs_f64() * 10.0).round() / 10.0));
    }
    ex.results.insert("seconds".into(), Value::Object(seconds));
    if let Some(s) = ex.sess.take() {
        s.close().await;
    }
    if !ex.skipped.is_empty() {
        d.ctx.out.progress(format!(
            "Skipped, unchanged since the last deploy: {} (--force redeploys them)",
            ex.skipped.join(", ")
        ));
    }
    ex.results.insert("skipped".into(), json!(ex.skipped));
    Ok(ex.results)
}

struct Executor<'a> {
    d: &'a Deploy<'a>,
    sess: Option<Session>,
    results: serde_json::Map<String, Value>,
    /// The host's deploy record, read once when a step first needs it.
    record: Option<BTreeMap<String, String>>,
    /// Ids of the steps that found their inputs unchanged.
    skipped: Vec<String>,
    trust: verify::Trust,
    /// The model this run made sure of.
    model: Option<String>,
}

impl Executor<'_> {
    async fn session(&mut self) -> Result<&Session> {
        if self.sess.is_none() {
            self.sess = Some(remote::connect(self.d.ctx, self.d.trial).await?);
        }
        Ok(self.sess.as_ref().expect("connected above"))
    }

    /// Runs a step's command; a command that found nothing to do says so on a `skipped:` line.
    async fn remote(&mut self, id: &str, cmd: &RemoteCmd) -> Result<()> {
        let s = self.session().await?;
        let out = s.run_with(cmd, None::<tokio::io::Empty>, Echo::Progress).await?;
        if record::skipped_line(&out.stdout_str()).is_some() {
            self.skipped.push(id.to_string());
        }
        Ok(())
    }

    async fn recorded(&mut self, key: &str) -> Result<Option<String>> {
        if self.record.is_none() {
            let dir = crate::remote::remote_dir(self.d.trial);
            let out = self.session().await?.run(&record::read_cmd(&dir)).await?;
            self.record = Some(record::parse(&out.stdout_str()));
        }
        Ok(self.record.as_ref().and_then(|r| r.get(key).cloned()))
    }

    /// True (and said) when the host's record holds `hash` for `key`.
    async fn unchanged(&mut self, id: &str, key: &str, hash: &str, skip: bool) -> Result<bool> {
        if !skip || self.recorded(key).await?.as_deref() != Some(hash) {
            return Ok(false);
        }
        self.d.ctx.out.progress(format!("      skipped: the host's deploy record has this {key} (sha256 {})", &hash[..12]));
        self.skipped.push(id.to_string());
        Ok(true)
    }

    async fn remember(&mut self, key: &str, hash: &str) -> Result<()> {
        let dir = crate::remote::remote_dir(self.d.trial);
        self.session().await?.run(&record::set_cmd(&dir, &[(key, hash)])).await?;
        if let Some(r) = self.record.as_mut() {
            r.insert(key.to_string(), hash.to_string());
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<()> {
        let ctx = self.d.ctx;
        match step {
            Step::CheckData { path, .. } => {
                let (c, cached) = checks::check_sqlite_cached(path, &ctx.store.root().join("data-checks.json"))?;
                ctx.out.progress(format!(
                    "      ok: {} tables, {}{}",
                    c.tables,
                    upload::human_bytes(c.bytes),
                    if cached { " (checked before, unchanged since)" } else { "" }
                ));
                self.results.insert("data".into(), json!(c));
            }
            Step::CheckEnv { .. } => {
                let missing = self.d.env.missing_required();
                if !missing.is_empty() {
                    return Err(usage(format!(
                        "the env is missing required keys: {} (set them in the --env file)",
                        missing.join(", ")
                    )));
                }
                ctx.out.progress(format!("      ok: {} keys", self.d.env.keys().len()));
            }
            Step::WaitCloudInit { timeout_s, cmd, .. } => self.wait_ready(cmd, Duration::from_secs(*timeout_s)).await?,
            Step::WriteManifest { cmd } | Step::ComposeUp { cmd } | Step::LoadData { cmd } => self.remote(step.id(), cmd).await?,
            Step::PullModel { model, cmd, required } => match self.remote(step.id(), cmd).await.inspect(|_| self.model = Some(model.clone())) {
                Ok(()) => {
                    self.results.insert("model".into(), json!({"model": model, "available": true}));
                }
                Err(e) if !*required => {
                    ctx.out.progress(format!(
                        "      warning: model {model} could not be had ({e:#}); the dashboard works and the assistant \
                         tells the client the model is unavailable (--require-model makes this a failure; \
                         --ship-model copies a model from a local Ollama store)"
                    ));
                    self.results.insert("model".into(), json!({"model": model, "available": false, "error": format!("{e:#}")}));
                }
                Err(e) => return Err(e),
            },
            Step::UploadData { local, remote, skip_unchanged } => {
                let src = snapshot::UploadSource::prepare(local, &ctx.store.root().join("snapshots"))?;
                if let Some(line) = src.progress_line() {
                    ctx.out.progress(line);
                }
                let opts = UploadOptions {
                    hash_cache: Some(ctx.store.root().join("upload-hashes.json")),
                    progress_bar: true,
                    force: !skip_unchanged,
                    ..Default::default()
                };
                // The deploy record, which the steps after this one need, is read beside the upload.
                let read_record = self.record.is_none().then(|| record::read_cmd(&crate::remote::remote_dir(self.d.trial)));
                let s = self.session().await?;
                let (r, rec) = tokio::join!(upload::upload_file(s, &src.path, remote, &opts), async {
                    match &read_record {
                        Some(cmd) => Some(s.run(cmd).await),
                        None => None,
                    }
                });
                if let Some(rec) = rec {
                    self.record = Some(record::parse(&rec?.stdout_str()));
                }
                let r = r?;
                src.verify_unchanged()?;
                if let Some(note) = &r.note {
                    ctx.out.progress(format!("      note: {note}"));
                }
                ctx.out.progress(format!("      {}", upload_summary(&r)));
                if r.skipped {
                    self.skipped.push(step.id().to_string());
                }
                let mut v = json!(r);
                src.annotate(&mut v);
                self.results.insert("upload".into(), v);
            }
            Step::UploadBundle { remote_dir, app_dir, skip_unchanged, .. } => {
                let contexts = match app_dir {
                    Some(dir) => Some(build_contexts(dir).await?),
                    None => None,
                };
                let hash = bundle_hash(contexts.as_deref());
                if self.unchanged(step.id(), "bundle", &hash, *skip_unchanged).await? {
                    return Ok(());
                }
                let s = self.session().await?;
                for f in bundle::files() {
                    upload::put_bytes(s, &format!("{remote_dir}/deploy/{}", f.path), f.contents, f.mode).await?;
                }
                if let Some(tar) = contexts {
                    s.run_with(&crate::deploy::unpack_contexts_cmd(remote_dir), Some(std::io::Cursor::new(tar)), Echo::Capture).await?;
                }
                self.remember("bundle", &hash).await?;
                ctx.out.progress(format!(
                    "      ok: {} stack files{}",
                    bundle::files().len(),
                    if app_dir.is_some() { " + backend/ frontend/" } else { "" }
                ));
            }
            Step::UploadEnv { remote, skip_unchanged, .. } => {
                let text = self.d.env.render();
                let hash = crate::ssh::hashcache::sha256_bytes(text.as_bytes());
                if self.unchanged(step.id(), "env", &hash, *skip_unchanged).await? {
                    return Ok(());
                }
                let s = self.session().await?;
                upload::put_bytes(s, remote, text.as_bytes(), 0o600).await?;
                let mode = s.run(&RemoteCmd::argv(["stat", "-c", "%a", remote])).await?.stdout_str();
                if mode.trim() != "600" {
                    bail!("{remote} has mode {} on the host, expected 600", mode.trim());
                }
                self.remember("env", &hash).await?;
                ctx.out.progress("      ok: mode 0600");
            }
            Step::UploadUsers { remote, users, skip_unchanged } => {
                let file = self.d.users_file.clone();
                let hash = crate::ssh::hashcache::sha256_bytes(file.as_bytes());
                if self.unchanged(step.id(), "users", &hash, *skip_unchanged).await? {
                    return Ok(());
                }
                let s = self.session().await?;
                upload::put_bytes(s, remote, file.as_bytes(), 0o600).await?;
                self.remember("users", &hash).await?;
                ctx.out.progress(format!("      ok: {} user(s), mode 0600", users.len()));
            }
            Step::ShipImages { builds, images, cmd, skip_unchanged } => {
                self.ship_images(step.id(), builds, images, cmd, *skip_unchanged).await?
            }
            Step::ShipModel { model, store, files, staging, cmd, skip_unchanged } => {
                // The manifest names every blob by its digest, so with the name it is the model.
                let manifest = std::fs::read(store.join(&files[0])).with_context(|| format!("reading {}", files[0]))?;
                let hash = crate::ssh::hashcache::sha256_bytes(&[model.as_bytes(), b"\n", &manifest].concat());
                if self.unchanged(step.id(), "model", &hash, *skip_unchanged).await? {
                    return Ok(());
                }
                let s = self.session().await?;
                let mut sent = 0;
                for f in files {
                    let r = upload::upload_file(s, &store.join(f), &format!("{staging}/{f}"), &UploadOptions::default()).await?;
                    sent += r.bytes_sent;
                }
                ctx.out.progress(format!("      uploaded {} files ({})", files.len(), upload::human_bytes(sent)));
                self.remote(step.id(), cmd).await?;
                self.remember("model", &hash).await?;
            }
            Step::CheckDns { name, address } => {
                let got: Vec<std::net::IpAddr> = match tokio::net::lookup_host((name.as_str(), 443)).await {
                    Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                    Err(_) => vec![],
                };
                crate::site::dns_verdict(name, address, &got).map_err(|e| anyhow!(e))?;
                ctx.out.progress(format!("      ok: {name} resolves to {address}"));
            }
            Step::ModelSpeed { skip_unchanged: true, .. } if self.speed_unchanged() => {}
            Step::Certificate { .. } | Step::WaitHealthy { .. } | Step::Smoke { .. } | Step::ModelSpeed { .. } | Step::ExposureProbe { .. } => {
                let password = self.d.password.clone().ok_or_else(|| anyhow!("no Basic Auth credentials"))?;
                let (trial, user) = (self.d.trial, self.d.user.clone());
                self.session().await?;
                let s = self.sess.as_ref().expect("connected above");
                let v = verify::run_step(ctx, trial, s, step, &user, &password, &mut self.trust).await?;
                self.results.insert(step.id().into(), v);
            }
        }
        Ok(())
    }

    /// True (and said, with the kept figure) when this run found the stack and the model as they
    /// were, and the figure kept is of that model: measuring again would only repeat it.
    fn speed_unchanged(&mut self) -> bool {
        let same = ["compose-up", "pull-model"].iter().all(|id| self.skipped.iter().any(|s| s == id));
        let kept = crate::model_speed::load(&self.d.ctx.store.trial_dir(&self.d.trial.name));
        let Some(sp) = kept.filter(|sp| same && self.model.as_deref() == Some(sp.model.as_str())) else {
            return false;
        };
        self.d.ctx.out.progress(format!("      skipped: the stack and the model are unchanged; measured {}: {}", sp.measured, sp.summary()));
        self.results.insert("model-speed".into(), json!({"speed": sp, "skipped": true}));
        self.skipped.push("model-speed".into());
        true
    }

    /// Repeat the readiness check (exit 0 ready, 3 not yet, else failed) until the deadline,
    /// reconnecting across the reboot a GPU driver install makes. A booting VM does not answer
    /// yet; a port that keeps refusing connections has no SSH server at all, so that fails after
    /// `MUNERO_SSH_REFUSED_S` (default 60) instead of the whole deadline.
    async fn wait_ready(&mut self, check: &RemoteCmd, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let give_up_refused =
            Duration::from_secs(std::env::var("MUNERO_SSH_REFUSED_S").ok().and_then(|v| v.parse().ok()).unwrap_or(60));
        let mut refused_since: Option<Instant> = None;
        let mut last = String::new();
        let mut said = Instant::now();
        loop {
            if self.sess.is_none() {
                match remote::connect(self.d.ctx, self.d.trial).await {
                    Ok(s) => {
                        self.sess = Some(s);
                        refused_since = None;
                    }
                    Err(e) => {
                        // A pinned-key mismatch is final; anything else may be the reboot.
                        if e.chain().any(|c| c.downcast_ref::<crate::ssh::HostKeyMismatch>().is_some()) {
                            return Err(e);
                        }
                        if refused(&e) {
                            let since = *refused_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= give_up_refused {
                                bail!(
                                    "{}:{} has refused SSH connections for {} s: no SSH server answers there \
                                     (check the trial's address and port, and that sshd runs on the host): {e:#}",
                                    remote::ssh_host(self.d.trial)?,
                                    remote::ssh_port(self.d.trial),
                                    since.elapsed().as_secs()
                                );
                            }
                        } else {
                            refused_since = None;
                        }
                        last = format!("{e:#}");
                    }
                }
            }
            if let Some(s) = &self.sess {
                match s.exec(check).await {
                    Ok(out) if out.status == Some(0) => {
                        let first = out.stdout_str().lines().next().unwrap_or("").to_string();
                        self.d.ctx.out.progress(format!("      ok: {first}"));
                        // A login made while cloud-init still ran predates the deploy user's
                        // docker group: the next step logs in afresh.
                        if let Some(s) = self.sess.take() {
                            s.close().await;
                        }
                        return Ok(());
                    }
                    Ok(out) if out.status == Some(3) => last = out.stdout_str().trim().to_string(),
                    Ok(out) => bail!(
                        "cloud-init failed on the host:\n{}{}",
                        out.stdout_str(),
                        crate::ssh::tail_lines(&out.stderr_str(), 40)
                    ),
                    Err(e) => {
                        last = format!("{e:#}");
                        self.sess = None;
                    }
                }
            }
            if start.elapsed() > timeout {
                bail!("the host was not ready after {}s (last: {last})", timeout.as_secs());
            }
            if said.elapsed() >= Duration::from_secs(20) {
                self.d.ctx.out.progress(format!("      still waiting ({} s of up to {} s): {last}", start.elapsed().as_secs(), timeout.as_secs()));
                said = Instant::now();
            }
            tokio::time::sleep(Duration::from_secs(if refused_since.is_some() { 2 } else { 5 })).await;
        }
    }

    async fn ship_images(&mut self, id: &str, builds: &[Vec<String>], images: &[String], load: &RemoteCmd, skip: bool) -> Result<()> {
        for b in builds {
            let st = tokio::process::Command::new(&b[0]).args(&b[1..]).stdout(std::process::Stdio::null()).status().await;
            if !st.with_context(|| format!("running {}", b[0]))?.success() {
                bail!("building an image here failed: {} (see the output above)", crate::plan::create::argv_line(b));
            }
        }
        // The build is cached and quick when nothing changed; the image ids then say so.
        let ids = tokio::process::Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}"])
            .args(images)
            .output()
            .await
            .context("running docker image inspect")?;
        if !ids.status.success() {
            bail!("docker image inspect {}: {}", images.join(" "), String::from_utf8_lossy(&ids.stderr).trim());
        }
        let hash = crate::ssh::hashcache::sha256_bytes(&ids.stdout);
        if self.unchanged(id, "images", &hash, skip).await? {
            return Ok(());
        }
        let mut save = tokio::process::Command::new("docker")
            .arg("save")
            .args(images)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("running docker save")?;
        let stdout = save.stdout.take().context("docker save stdout")?;
        let s = self.session().await?;
        s.run_with(load, Some(stdout), Echo::Progress).await?;
        if !save.wait().await?.success() {
            bail!("docker save failed");
        }
        self.remember("images", &hash).await
    }
}

/// `tar` of backend/ and frontend/ (without dependencies, caches and local data), kept in memory:
/// its hash decides whether it goes at all.
async fn build_contexts(app_dir: &Path) -> Result<Vec<u8>> {
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
    cmd.args(["-cf", "-", "backend", "frontend"]);
    let out = cmd.output().await.context("running tar for the build contexts")?;
    if !out.status.success() {
        bail!("tar of {} failed: {}", app_dir.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

/// What the bundle step puts on the host, as one hash: the stack files and the build contexts.
fn bundle_hash(contexts: Option<&[u8]>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in bundle::files() {
        h.update(format!("{} {:o} {}\n", f.path, f.mode, f.contents.len()));
        h.update(f.contents);
    }
    h.update(contexts.unwrap_or_default());
    hex::encode(h.finalize())
}

/// The connection was refused (nothing listens on the port), as opposed to unanswered.
fn refused(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused))
        || format!("{e:#}").contains("Connection refused")
}

/// One line on what the upload did: the mode, the bytes that crossed the link, the time.
pub fn upload_summary(r: &upload::UploadReport) -> String {
    use upload::{human_bytes, Mode};
    let wire = format!("{} on the wire in {:.1}s", human_bytes(r.bytes_on_wire), r.seconds);
    match r.mode {
        Mode::Skipped => format!("skipped: the host already holds sha256 {}", r.sha256),
        Mode::Delta => format!(
            "delta: {} of {} changed, {wire}; sha256 {} verified on the host",
            human_bytes(r.bytes_sent),
            human_bytes(r.size),
            r.sha256
        ),
        Mode::Compressed | Mode::Full => format!(
            "uploaded {} ({}{}; {wire}), sha256 {} verified on the host",
            human_bytes(r.size),
            if r.mode == Mode::Compressed { "zstd" } else { "plain" },
            if r.resumed_from > 0 { format!(", resumed at {}", human_bytes(r.resumed_from)) } else { String::new() },
            r.sha256
        ),
    }
}
