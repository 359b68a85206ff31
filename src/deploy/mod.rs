//! A deploy as data: an ordered list of typed steps built by pure functions. `deploy --dry-run`
//! prints exactly this list; the executor (commands/deploy.rs) walks the same list over one SSH
//! connection. The remote commands are pure functions too, so tests assert them as text.

pub mod bundle;
pub mod checks;
pub mod env;
pub mod manifest;
pub mod model;
pub mod record;
pub mod run;
pub mod sample;
pub mod snapshot;
pub mod verify;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::site::Tls;
use crate::ssh::{quote, RemoteCmd};

/// Ports the exposure probe expects to answer (besides the trial's SSH port, 22 on a cloud VM),
/// and those that must not.
pub const EXPECT_OPEN: &[u16] = &[80, 443];
pub const EXPECT_CLOSED: &[u16] = &[11434, 8000, 3000];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// SQLite opens, `PRAGMA integrity_check` is ok, it has tables.
    CheckData { path: PathBuf, sample: bool },
    /// The env file parses and, merged with the generated values, has the required keys.
    CheckEnv { path: Option<PathBuf>, required: Vec<String> },
    /// Repeat `cmd` every 5 s until it exits 0 (ready), for up to `timeout_s`; 3 means not yet,
    /// anything else that cloud-init failed.
    WaitCloudInit { gpu: bool, timeout_s: u64, cmd: RemoteCmd },
    /// Record on the host what deploy puts there, so destroy removes exactly that.
    WriteManifest { cmd: RemoteCmd },
    /// Upload (delta or zstd on the wire) + resume + sha256 verify + atomic rename; skipped when
    /// the host has the same hash unless `--force`.
    UploadData { local: PathBuf, remote: String, skip_unchanged: bool },
    /// The stack files carried by this binary, plus the app build contexts unless images are shipped.
    UploadBundle { remote_dir: String, files: Vec<String>, app_dir: Option<PathBuf>, skip_unchanged: bool },
    /// The merged `.env`, written with mode 0600 (values never shown).
    UploadEnv { remote: String, keys: Vec<String>, skip_unchanged: bool },
    /// The Basic Auth users Caddy imports (names and bcrypt hashes, mode 0600; never passwords).
    UploadUsers { remote: String, users: Vec<String>, skip_unchanged: bool },
    /// Build the images here and stream them with `docker save | docker load`.
    ShipImages { builds: Vec<Vec<String>>, images: Vec<String>, cmd: RemoteCmd, skip_unchanged: bool },
    /// `docker compose up -d` (detecting `docker compose` vs `docker-compose`).
    ComposeUp { cmd: RemoteCmd },
    /// Copy the uploaded dataset into the client_data volume (deploy/load_client_data.sh).
    LoadData { cmd: RemoteCmd },
    /// `ollama pull` inside the stack's network, progress shown.
    /// `required`: a model that cannot be had fails the deploy (`--require-model`); otherwise it
    /// is reported and the deploy goes on (the dashboard works, the assistant says so).
    PullModel { model: String, cmd: RemoteCmd, required: bool },
    /// The model's files from a local Ollama store, uploaded (resume, sha256 verified) to the
    /// host's staging directory, then copied into the Ollama volume by `cmd`; skipped when the
    /// host's deploy record holds the same model (name and manifest) unless `--force`.
    ShipModel { model: String, store: PathBuf, files: Vec<String>, staging: String, cmd: RemoteCmd, skip_unchanged: bool },
    /// The name the operator owns resolves, from here, to the server's address: a CA asked for
    /// a certificate would otherwise check another machine (or none) and fail.
    CheckDns { name: String, address: String },
    /// Wait until the site presents a certificate for its name that the roots named by `tls`
    /// trust (ACME: this machine's roots; internal: Caddy's own CA), and report its issuer and
    /// expiry. On a timeout, Caddy's log says why the CA refused.
    Certificate { url: String, name: String, tls: Tls, timeout_s: u64 },
    /// Poll `/health` on the public URL until it answers 200.
    /// Without `require_model`, a /health that is degraded only because the model is missing
    /// counts once the dashboard's own API answers.
    WaitHealthy { url: String, require_model: bool },
    /// `/health`, `/api/dashboard/test`, `/api/chat/test`, `POST /api/chat/` with Basic Auth.
    Smoke { url: String, require_model: bool },
    /// One short generation inside the stack (the model-speed script on stdin, run in the
    /// backend container): Ollama's load time and tokens/s, and on GPU trials the model's share
    /// of GPU memory and nvidia-smi. Slower than `min_tps` is a warning; a GPU trial whose model
    /// is not all in GPU memory fails.
    /// `skip_unchanged`: a deploy that found the stack and the model unchanged keeps the last figure.
    ModelSpeed { gpu: bool, min_tps: f64, require_model: bool, skip_unchanged: bool, cmd: RemoteCmd },
    /// TCP from here: only 22/80/443 answer; on the host only caddy publishes ports.
    ExposureProbe { host: String, open: Vec<u16>, closed: Vec<u16> },
}

impl Step {
    /// Stable short name (`--only` takes these).
    pub fn id(&self) -> &'static str {
        match self {
            Step::CheckData { .. } => "check-data",
            Step::CheckEnv { .. } => "check-env",
            Step::CheckDns { .. } => "check-dns",
            Step::WaitCloudInit { .. } => "wait-cloud-init",
            Step::WriteManifest { .. } => "write-manifest",
            Step::UploadData { .. } => "upload-data",
            Step::UploadBundle { .. } => "upload-bundle",
            Step::UploadEnv { .. } => "upload-env",
            Step::UploadUsers { .. } => "upload-users",
            Step::ShipImages { .. } => "ship-images",
            Step::ComposeUp { .. } => "compose-up",
            Step::LoadData { .. } => "load-data",
            Step::PullModel { .. } => "pull-model",
            Step::ShipModel { .. } => "ship-model",
            Step::Certificate { .. } => "certificate",
            Step::WaitHealthy { .. } => "wait-healthy",
            Step::Smoke { .. } => "smoke",
            Step::ModelSpeed { .. } => "model-speed",
            Step::ExposureProbe { .. } => "exposure-probe",
        }
    }

    pub fn is_local_only(&self) -> bool {
        matches!(self, Step::CheckData { .. } | Step::CheckEnv { .. } | Step::CheckDns { .. })
    }
}

pub const STEP_IDS: &[&str] = &[
    "check-data",
    "check-env",
    "check-dns",
    "wait-cloud-init",
    "write-manifest",
    "upload-data",
    "upload-bundle",
    "upload-env",
    "upload-users",
    "ship-images",
    "compose-up",
    "load-data",
    "pull-model",
    "ship-model",
    "certificate",
    "wait-healthy",
    "smoke",
    "model-speed",
    "exposure-probe",
];

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CheckData { path, sample } => write!(
                f,
                "check the dataset {}{}: opens as SQLite, PRAGMA integrity_check = ok, has tables",
                path.display(),
                if *sample { " (bundled sample)" } else { "" }
            ),
            Step::CheckEnv { path, required } => write!(
                f,
                "check the env ({}) merged with the generated values has {}",
                path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "bundled .env.example".into()),
                required.join(", ")
            ),
            Step::WaitCloudInit { gpu, timeout_s, cmd } => write!(
                f,
                "wait until the host is ready{} (every 5 s, up to {timeout_s} s; exit 0 ready, 3 not yet): {cmd}",
                if *gpu { ", the NVIDIA driver included" } else { "" }
            ),
            Step::WriteManifest { cmd } => write!(f, "record what deploy puts on the host: {cmd}"),
            Step::UploadData { local, remote, skip_unchanged } => write!(
                f,
                "upload {} -> {remote} (only the changed blocks when the host holds an older copy, else zstd on the wire; \
                 via {remote}.part, resume, sha256 verified on the host, atomic rename; {}; \
                 a database in WAL mode or with a -wal/-journal beside it goes as a checked snapshot)",
                local.display(),
                if *skip_unchanged { "skipped when the host holds the same sha256" } else { "sent whole (--force)" }
            ),
            Step::UploadBundle { remote_dir, files, app_dir, skip_unchanged } => {
                write!(f, "upload the stack to {remote_dir}/deploy: {}", files.join(" "))?;
                match app_dir {
                    Some(d) => write!(f, "; build contexts backend/ frontend/ from {}", d.display())?,
                    None => write!(f, "; no build contexts (images are shipped)")?,
                }
                write!(f, "{}", unless_recorded(*skip_unchanged, "bundle"))
            }
            Step::UploadEnv { remote, keys, skip_unchanged } => write!(
                f,
                "write {remote} with mode 0600 (keys: {}; values not shown){}",
                keys.join(", "),
                unless_recorded(*skip_unchanged, "env")
            ),
            Step::UploadUsers { remote, users, skip_unchanged } => write!(
                f,
                "write {remote} with mode 0600: Basic Auth users {} (bcrypt hashes only){}",
                if users.is_empty() { "none: the trial is locked".to_string() } else { users.join(", ") },
                unless_recorded(*skip_unchanged, "users")
            ),
            Step::ShipImages { builds, images, cmd, skip_unchanged } => {
                write!(f, "build here:")?;
                for b in builds {
                    write!(f, " {};", crate::plan::create::argv_line(b))?;
                }
                write!(f, " then docker save {} | {cmd}{}", images.join(" "), unless_recorded(*skip_unchanged, "images"))
            }
            Step::ComposeUp { cmd } => write!(f, "bring the stack up: {cmd}"),
            Step::LoadData { cmd } => write!(f, "load the dataset into the client_data volume (atomic): {cmd}"),
            Step::PullModel { model, cmd, required } => write!(
                f,
                "make sure model {model} is present{}: {cmd}",
                if *required { "" } else { " (if it cannot be had: reported, and the dashboard still works)" }
            ),
            Step::ShipModel { model, store, files, staging, cmd, skip_unchanged } => write!(
                f,
                "copy model {model} from {} ({} files: {}) to {staging} (resume, sha256 verified), then: {cmd}{}",
                store.display(),
                files.len(),
                files.join(" "),
                unless_recorded(*skip_unchanged, "model")
            ),
            Step::CheckDns { name, address } => {
                write!(f, "check that {name} resolves to {address} (a CA checks the name there before it issues)")
            }
            Step::Certificate { url, name, tls, timeout_s } => write!(
                f,
                "wait up to {timeout_s}s until {url} presents a certificate for {name} {}; report its issuer and expiry",
                match tls {
                    Tls::Acme => "that this machine's root certificates trust (Let's Encrypt over ACME)",
                    Tls::AcmeStaging => "from Let's Encrypt's staging CA (its chain is not trusted anywhere, so not verified)",
                    Tls::Internal => "signed by the stack's own CA (Caddy tls internal)",
                }
            ),
            Step::WaitHealthy { url, require_model } => write!(
                f,
                "wait until {url}health answers 200{}",
                if *require_model { "" } else { " (or 503 with the dashboard API answering: the model is missing)" }
            ),
            Step::Smoke { url, require_model } => write!(
                f,
                "smoke {url} with Basic Auth: /health, /api/dashboard/test, /api/chat/test, POST /api/chat/{}",
                if *require_model { "" } else { " (a missing model is reported, not a failure)" }
            ),
            Step::ModelSpeed { gpu, min_tps, require_model, skip_unchanged, cmd } => write!(
                f,
                "model speed: one short generation inside the stack, Ollama's load time and tokens/s \
                 (under {min_tps} tokens/s is a warning{}{}{}): {cmd} < the model-speed script",
                if *gpu { "; the whole model must sit in GPU memory and nvidia-smi must work" } else { "" },
                if *require_model { "; no model is a failure" } else { "" },
                if *skip_unchanged { "; skipped when this deploy found the stack and the model unchanged and a figure of that model is kept" } else { "" }
            ),
            Step::ExposureProbe { host, open, closed } => write!(
                f,
                "exposure probe {host}: {} answer, {} do not; on the host only caddy publishes ports",
                join_ports(open),
                join_ports(closed)
            ),
        }
    }
}

/// How an upload step says it may be skipped.
fn unless_recorded(skip: bool, what: &str) -> String {
    if skip {
        format!("; skipped when the host's deploy record ({}) has the same {what} sha256", record::RECORD_FILE)
    } else {
        String::new()
    }
}

fn join_ports(p: &[u16]) -> String {
    p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("/")
}

/// What a deploy needs to build its plan.
#[derive(Debug, Clone)]
pub struct DeployInputs {
    pub data: PathBuf,
    pub data_is_sample: bool,
    pub env_file: Option<PathBuf>,
    pub env_keys: Vec<String>,
    pub remote_dir: String,
    pub gpu: bool,
    pub app_dir: PathBuf,
    pub ship_images: bool,
    /// Images `--ship-images` streams (see [`images_to_ship`]) and the builds that make the
    /// app images here first (see [`app_build_argvs`]).
    pub shipped_images: Vec<String>,
    pub image_builds: Vec<Vec<String>>,
    /// `--require-model`: no model is a failed deploy, not a warning.
    pub require_model: bool,
    /// `--ship-model`: the local Ollama store and the model's files in it.
    pub ship_model: Option<(PathBuf, Vec<String>)>,
    pub model: String,
    pub url: String,
    pub site: SiteSpec,
    pub probe_host: String,
    /// The trial's SSH port (22 on a cloud VM; whatever the host uses for `--provider ssh`).
    pub ssh_port: u16,
    /// Host ports that stand for the VM's ports (a local VM behind port forwards), by guest port.
    pub forwards: BTreeMap<String, u16>,
    /// Whether the host boots our cloud-init, which leaves a ready marker to wait for.
    pub ready_marker: bool,
    pub cloud_init_timeout_s: u64,
    /// Names of the trial's Basic Auth users (the hashes travel with the executor, not the plan).
    pub auth_users: Vec<String>,
    /// Generation slower than this (tokens/s) is a warning in the model-speed check.
    pub min_tps: f64,
    /// Redeploy everything, whatever the host's deploy record says (`--force`).
    pub force: bool,
}

pub fn remote_data_path(remote_dir: &str) -> String {
    format!("{remote_dir}/data/client.sqlite")
}

pub fn remote_env_path(remote_dir: &str) -> String {
    format!("{remote_dir}/deploy/.env")
}

/// The stack's images: env key, the compose file's default, and whether deploy builds it from
/// the checkout (the others are pulled by the host, or shipped when this machine has them).
pub const STACK_IMAGES: &[(&str, &str, bool)] = &[
    ("BACKEND_IMAGE", "munero/backend:local", true),
    ("FRONTEND_IMAGE", "munero/frontend:local", true),
    ("OLLAMA_IMAGE", "ollama/ollama:0.12.3", false),
    ("CADDY_IMAGE", "caddy:2.10.2", false),
];

/// The app images deploy builds from the checkout: image key, default, build context, the base
/// image's key and default (as the compose file's build sections say).
pub const APP_BUILDS: &[(&str, &str, &str, &str, &str)] = &[
    ("BACKEND_IMAGE", "munero/backend:local", "backend", "BACKEND_BASE_IMAGE", "python:3.13-slim"),
    ("FRONTEND_IMAGE", "munero/frontend:local", "frontend", "FRONTEND_BASE_IMAGE", "node:22-bookworm-slim"),
];

/// `docker build` of each app image here, with the env's names and base images (compose is not
/// used: it would want the host's `.env` beside the compose file).
pub fn app_build_argvs(env: &env::EnvFile, app_dir: &std::path::Path) -> Vec<Vec<String>> {
    let pick = |k: &str, d: &str| env.get(k).filter(|v| !v.is_empty()).unwrap_or(d).to_string();
    APP_BUILDS
        .iter()
        .map(|(img, img_d, ctx, base, base_d)| {
            vec![
                "docker".into(),
                "build".into(),
                "--quiet".into(),
                "-t".into(),
                pick(img, img_d),
                "--build-arg".into(),
                format!("BASE_IMAGE={}", pick(base, base_d)),
                app_dir.join(ctx).display().to_string(),
            ]
        })
        .collect()
}

/// What `--ship-images` streams to the host: the app images it builds here, and the stack's
/// other images when this machine's engine already holds them (a host that cannot reach a
/// registry, such as a rehearsal VM, then needs none).
pub fn images_to_ship(env: &env::EnvFile, have_here: impl Fn(&str) -> bool) -> Vec<String> {
    STACK_IMAGES
        .iter()
        .map(|(key, default, built)| (env.get(key).filter(|v| !v.is_empty()).unwrap_or(default).to_string(), *built))
        .filter(|(img, built)| *built || have_here(img))
        .map(|(img, _)| img)
        .collect()
}

/// deploy steps 1-8.
pub fn deploy_plan(i: &DeployInputs) -> Vec<Step> {
    let skip = !i.force;
    let mut s = vec![
        Step::CheckData { path: i.data.clone(), sample: i.data_is_sample },
        Step::CheckEnv { path: i.env_file.clone(), required: env::REQUIRED_KEYS.iter().map(|k| k.to_string()).collect() },
        Step::WaitCloudInit {
            gpu: i.gpu,
            timeout_s: i.cloud_init_timeout_s,
            cmd: cloud_init_check_cmd(i.gpu, i.ready_marker),
        },
        Step::WriteManifest { cmd: manifest::write_cmd(&i.remote_dir) },
        Step::UploadData { local: i.data.clone(), remote: remote_data_path(&i.remote_dir), skip_unchanged: skip },
        Step::UploadBundle {
            remote_dir: i.remote_dir.clone(),
            files: bundle::files().iter().map(|f| f.path.to_string()).collect(),
            app_dir: (!i.ship_images).then(|| i.app_dir.clone()),
            skip_unchanged: skip,
        },
        Step::UploadEnv { remote: remote_env_path(&i.remote_dir), keys: i.env_keys.clone(), skip_unchanged: skip },
        Step::UploadUsers {
            remote: format!("{}/deploy/auth/users.caddy", i.remote_dir),
            users: i.auth_users.clone(),
            skip_unchanged: skip,
        },
    ];
    if i.ship_images {
        s.push(Step::ShipImages {
            builds: i.image_builds.clone(),
            images: i.shipped_images.clone(),
            cmd: RemoteCmd::argv(["docker", "load"]),
            skip_unchanged: skip,
        });
    }
    s.push(Step::ComposeUp { cmd: compose_up_cmd(&i.remote_dir, i.gpu, !i.ship_images, skip) });
    s.push(Step::LoadData { cmd: load_data_cmd(&i.remote_dir, skip) });
    s.push(match &i.ship_model {
        Some((store, files)) => Step::ShipModel {
            model: i.model.clone(),
            store: store.clone(),
            files: files.clone(),
            staging: model::staging_dir(&i.remote_dir),
            cmd: model::install_cmd(&i.remote_dir, i.gpu),
            skip_unchanged: skip,
        },
        None => Step::PullModel {
            model: i.model.clone(),
            cmd: pull_model_cmd(&i.remote_dir, i.gpu, &i.model, skip),
            required: i.require_model,
        },
    });
    if let Some(address) = &i.site.dns_expect {
        s.insert(2, Step::CheckDns { name: i.site.name.clone(), address: address.clone() });
    }
    let speed = SpeedSpec { remote_dir: i.remote_dir.clone(), gpu: i.gpu, min_tps: i.min_tps, skip_unchanged: skip };
    s.extend(smoke_plan(&i.url, &i.site, &i.probe_host, i.ssh_port, &i.forwards, i.require_model, &speed));
    s
}

/// The site's name and certificate, as the checks need them.
#[derive(Debug, Clone)]
pub struct SiteSpec {
    pub name: String,
    pub tls: Tls,
    /// A name the operator owns (not an auto name, which resolves by construction), with the
    /// address it must resolve to before a CA is asked.
    pub dns_expect: Option<String>,
    pub cert_timeout_s: u64,
}

/// What the model-speed check needs to know about the trial.
#[derive(Debug, Clone)]
pub struct SpeedSpec {
    pub remote_dir: String,
    pub gpu: bool,
    pub min_tps: f64,
    /// Keep the last figure when the deploy found the stack and the model unchanged.
    pub skip_unchanged: bool,
}

/// The host's nvidia-smi (GPU trials), then the model-speed script, read from stdin by Python in
/// the backend container (read-only, on the stack's private network, where Ollama answers).
pub fn model_speed_cmd(remote_dir: &str, gpu: bool) -> RemoteCmd {
    let gpu_part = if gpu { "nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1; echo \"nvidia-smi exit $?\"; " } else { "" };
    RemoteCmd::shell(format!("{gpu_part}{} && dc exec -T backend python3 -", compose_prelude(remote_dir, gpu)))
}

/// The checks `smoke` reruns, which also end every deploy.
#[allow(clippy::too_many_arguments)]
pub fn smoke_plan(
    url: &str,
    site: &SiteSpec,
    probe_host: &str,
    ssh_port: u16,
    forwards: &BTreeMap<String, u16>,
    require_model: bool,
    speed: &SpeedSpec,
) -> Vec<Step> {
    let on_host = |guest: &u16| forwards.get(&guest.to_string()).copied().unwrap_or(*guest);
    let mut open = vec![ssh_port];
    open.extend(EXPECT_OPEN.iter().map(on_host).filter(|p| *p != ssh_port));
    vec![
        Step::Certificate { url: url.to_string(), name: site.name.clone(), tls: site.tls, timeout_s: site.cert_timeout_s },
        Step::WaitHealthy { url: url.to_string(), require_model },
        Step::Smoke { url: url.to_string(), require_model },
        Step::ModelSpeed {
            gpu: speed.gpu,
            min_tps: speed.min_tps,
            require_model,
            skip_unchanged: speed.skip_unchanged,
            cmd: model_speed_cmd(&speed.remote_dir, speed.gpu),
        },
        Step::ExposureProbe {
            host: probe_host.to_string(),
            open,
            closed: EXPECT_CLOSED.iter().map(on_host).collect(),
        },
    ]
}

/// Steps that put something on the host: the manifest goes with any of them.
const PUTS_ON_HOST: &[&str] = &["upload-data", "upload-bundle", "upload-env", "upload-users", "ship-images", "compose-up", "load-data"];

/// Keep only the named steps (`--only a,b`), in plan order; the manifest is written whenever
/// one of them puts something on the host, the users file whenever the stack files go or start.
pub fn filter_plan(plan: Vec<Step>, only: &[String]) -> Vec<Step> {
    if only.is_empty() {
        return plan;
    }
    let manifest = only.iter().any(|o| PUTS_ON_HOST.contains(&o.as_str()));
    // Caddy does not start without the users file its Caddyfile imports.
    let users = only.iter().any(|o| o == "compose-up" || o == "upload-bundle");
    plan.into_iter()
        .filter(|s| {
            only.iter().any(|o| o == s.id())
                || (manifest && s.id() == "write-manifest")
                || (users && s.id() == "upload-users")
        })
        .collect()
}

/// True when the steps include the one that starts the stack: only then was anything deployed.
pub fn brings_stack_up(steps: &[Step]) -> bool {
    steps.iter().any(|s| matches!(s, Step::ComposeUp { .. }))
}

/// The closing line of a run that did not start the stack (`--only` without compose-up): what
/// ran, and that nothing was deployed. None when the stack was brought up.
pub fn not_deployed_summary(trial: &str, steps: &[Step]) -> Option<String> {
    if brings_stack_up(steps) {
        return None;
    }
    let ids: Vec<&str> = steps.iter().map(Step::id).collect();
    let ran = if ids.is_empty() { "no step".to_string() } else { ids.join(", ") };
    let why = if steps.iter().all(Step::is_local_only) {
        "nothing was sent to the host"
    } else {
        "the stack is started by compose-up, which did not run"
    };
    Some(format!("Ran {ran} on trial {trial}; nothing was deployed ({why})"))
}

/// A numbered plan, one step per line: `  3. [upload-data] upload ...`.
pub fn render(steps: &[Step]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(n, s)| format!("{:>2}. [{}] {s}", n + 1, s.id()))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- remote commands (pure) ----------------------------------------------------------------

/// `cd <dir>/deploy` and define `dc` as `docker compose` or `docker-compose`, with the GPU
/// override when asked.
pub fn compose_prelude(remote_dir: &str, gpu: bool) -> String {
    let files = if gpu { "-f docker-compose.yml -f docker-compose.gpu.yml" } else { "-f docker-compose.yml" };
    format!(
        "cd {dir}/deploy && \
         if docker compose version >/dev/null 2>&1; then dc() {{ docker compose {files} \"$@\"; }}; \
         elif command -v docker-compose >/dev/null 2>&1; then dc() {{ docker-compose {files} \"$@\"; }}; \
         else echo 'neither `docker compose` nor `docker-compose` is installed on this host' >&2; exit 127; fi",
        dir = quote(remote_dir)
    )
}

pub fn compose_cmd(remote_dir: &str, gpu: bool, args: &[&str]) -> RemoteCmd {
    let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    RemoteCmd::shell(format!("{} && dc {}", compose_prelude(remote_dir, gpu), args.join(" ")))
}

/// `compose up`; with `skip_unchanged`, only when the deploy record says the running stack was
/// brought up from other inputs.
pub fn compose_up_cmd(remote_dir: &str, gpu: bool, build: bool, skip_unchanged: bool) -> RemoteCmd {
    let b = if build { "--build" } else { "--no-build" };
    let up = ["up", "-d", b, "--remove-orphans"];
    if !skip_unchanged {
        return compose_cmd(remote_dir, gpu, &up);
    }
    RemoteCmd::shell(record::compose_up_guarded(&compose_prelude(remote_dir, gpu), &format!("dc {}", up.join(" "))))
}

/// Waits (up to 2 minutes) for the Ollama server in its container, then `ollama pull` (the
/// /api/pull endpoint, from inside the stack's network; progress goes to stderr).
pub fn pull_model_cmd(remote_dir: &str, gpu: bool, model: &str, skip_unchanged: bool) -> RemoteCmd {
    let pull = pull_model_line(remote_dir, gpu, model);
    if skip_unchanged {
        RemoteCmd::shell(record::pull_model_guarded(remote_dir, model, &pull))
    } else {
        RemoteCmd::shell(pull)
    }
}

fn pull_model_line(remote_dir: &str, gpu: bool, model: &str) -> String {
    format!(
        "{} && i=0; until dc exec -T ollama ollama list >/dev/null 2>&1; do i=$((i+2)); \
         if [ $i -ge 120 ]; then echo 'the ollama service does not answer' >&2; dc ps >&2; exit 1; fi; sleep 2; done; \
         dc exec -T ollama ollama pull {}",
        compose_prelude(remote_dir, gpu),
        quote(model)
    )
}

/// The dataset is uploaded to `<dir>/data/client.sqlite`, i.e. `../data/client.sqlite` from the
/// stack directory.
pub fn load_data_cmd(remote_dir: &str, skip_unchanged: bool) -> RemoteCmd {
    let load = "bash ./load_client_data.sh ../data/client.sqlite";
    if skip_unchanged {
        return RemoteCmd::shell(record::load_data_guarded(remote_dir, load));
    }
    RemoteCmd::shell(format!("cd {}/deploy && {load}", quote(remote_dir)))
}

/// The stack's wipe, then the uploaded copy of the dataset outside the volume (with its partial
/// upload and cached hash) goes too, whatever the wipe's outcome; the wipe's exit status is kept.
pub fn wipe_cmd(remote_dir: &str, gpu: bool) -> RemoteCmd {
    let files = if gpu { "-f docker-compose.yml -f docker-compose.gpu.yml" } else { "-f docker-compose.yml" };
    RemoteCmd::shell(format!(
        "(cd {}/deploy && MUNERO_COMPOSE_ARGS={} bash ./wipe_client_data.sh --yes); rc=$?; \
         rm -f -- {d} {d}.part {d}.sha256 {d}.blocks {d}.part.blocks {rec} && printf 'uploaded copy removed: %s\\n' {d}; exit $rc",
        quote(remote_dir),
        quote(files),
        d = quote(&remote_data_path(remote_dir)),
        rec = quote(&record::path(remote_dir)),
    ))
}

pub fn logs_cmd(remote_dir: &str, gpu: bool, service: Option<&str>, follow: bool, since: Option<&str>) -> RemoteCmd {
    let mut args = vec!["logs", "--no-color"];
    if follow {
        args.push("--follow");
    }
    if let Some(s) = since {
        args.push("--since");
        args.push(s);
    }
    if let Some(s) = service {
        args.push(s);
    }
    compose_cmd(remote_dir, gpu, &args)
}

/// `<service>\t<ports>` for every running container of the stack.
pub fn published_ports_cmd() -> RemoteCmd {
    RemoteCmd::argv([
        "docker",
        "ps",
        "--format",
        "{{.Label \"com.docker.compose.service\"}}\t{{.Names}}\t{{.Ports}}",
    ])
}

/// Unpack the build contexts streamed on stdin into the stack directory, replacing the old ones.
pub fn unpack_contexts_cmd(remote_dir: &str) -> RemoteCmd {
    let dir = quote(remote_dir);
    RemoteCmd::shell(format!(
        "mkdir -p {dir} && cd {dir} && rm -rf backend.new frontend.new && mkdir backend.new && \
         tar -xf - --no-same-owner -C backend.new && rm -rf backend frontend && \
         mv backend.new/backend backend && mv backend.new/frontend frontend && rmdir backend.new"
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteSpec {
        SiteSpec { name: "203.0.113.9".into(), tls: Tls::Internal, dns_expect: None, cert_timeout_s: 30 }
    }

    fn speed() -> SpeedSpec {
        SpeedSpec { remote_dir: "/opt/munero".into(), gpu: false, min_tps: 8.0, skip_unchanged: false }
    }

    #[test]
    fn the_model_speed_check_reads_nvidia_smi_only_on_gpu_trials() {
        let cpu = model_speed_cmd("/opt/munero", false).to_string();
        assert!(cpu.ends_with("dc exec -T backend python3 -") && !cpu.contains("nvidia-smi"), "{cpu}");
        let gpu = model_speed_cmd("/opt/munero", true).to_string();
        assert!(gpu.starts_with("nvidia-smi --query-gpu") && gpu.contains("docker-compose.gpu.yml"), "{gpu}");
    }

    #[test]
    fn an_owned_name_is_checked_in_dns_before_the_stack_asks_a_ca_and_every_site_gets_a_certificate_check() {
        let owned = SiteSpec { name: "t.example.com".into(), tls: Tls::Acme, dns_expect: Some("203.0.113.9".into()), cert_timeout_s: 300 };
        let plan = deploy_plan(&DeployInputs { site: owned, ..inputs(false, false) });
        let ids: Vec<&str> = plan.iter().map(Step::id).collect();
        assert_eq!(&ids[..3], ["check-data", "check-env", "check-dns"]);
        let cert = plan.iter().position(|s| s.id() == "certificate").unwrap();
        assert_eq!(ids[cert + 1], "wait-healthy");
        let text = render(&plan);
        assert!(text.contains("check that t.example.com resolves to 203.0.113.9"), "{text}");
        assert!(text.contains("certificate for t.example.com that this machine's root certificates trust"), "{text}");
        let plain = deploy_plan(&inputs(false, false));
        assert!(!plain.iter().any(|s| s.id() == "check-dns"));
        assert!(render(&plain).contains("signed by the stack's own CA"));
    }

    fn inputs(ship: bool, gpu: bool) -> DeployInputs {
        DeployInputs {
            data: "/tmp/c.sqlite".into(),
            data_is_sample: false,
            env_file: None,
            env_keys: vec!["MUNERO_DOMAIN".into(), "BASIC_AUTH_HASH".into()],
            remote_dir: "munero".into(),
            gpu,
            app_dir: "/src/munero".into(),
            ship_images: ship,
            shipped_images: vec!["munero/backend:local".into(), "munero/frontend:local".into()],
            image_builds: vec![vec!["docker".into(), "build".into()]],
            ship_model: None,
            require_model: false,
            model: "qwen2.5-coder:3b".into(),
            url: "https://acme.example.net/".into(),
            site: site(),
            probe_host: "203.0.113.9".into(),
            ssh_port: 22,
            forwards: BTreeMap::new(),
            ready_marker: true,
            cloud_init_timeout_s: 1800,
            auth_users: vec!["acme".into()],
            min_tps: 8.0,
            force: false,
        }
    }

    #[test]
    fn deploy_plan_has_steps_1_to_8_in_order() {
        let ids: Vec<&str> = deploy_plan(&inputs(false, false)).iter().map(Step::id).collect();
        assert_eq!(
            ids,
            [
                "check-data", "check-env", "wait-cloud-init", "write-manifest", "upload-data", "upload-bundle", "upload-env",
                "upload-users", "compose-up", "load-data", "pull-model", "certificate", "wait-healthy", "smoke", "model-speed", "exposure-probe"
            ]
        );
        let ids: Vec<&str> = deploy_plan(&inputs(true, true)).iter().map(Step::id).collect();
        assert!(ids.contains(&"ship-images"));
        for id in &ids {
            assert!(STEP_IDS.contains(id));
        }
    }

    #[test]
    fn plan_text_names_the_env_keys_but_no_values() {
        let text = render(&deploy_plan(&inputs(false, true)));
        assert!(text.contains(" 5. [upload-data] upload /tmp/c.sqlite -> munero/data/client.sqlite"));
        assert!(text.contains("write munero/deploy/.env with mode 0600 (keys: MUNERO_DOMAIN, BASIC_AUTH_HASH; values not shown)"));
        // Remote steps print the very command line the host receives.
        let up = compose_up_cmd("munero", true, true, true).to_command_line();
        assert!(text.contains(&format!("[compose-up] bring the stack up: {up}")), "{text}");
        assert!(up.contains("-f docker-compose.gpu.yml") && up.contains("dc up -d --build --remove-orphans && "));
        assert!(text.contains(&cloud_init_check_cmd(true, true).to_command_line()));
    }

    #[test]
    fn plan_says_which_steps_an_unchanged_deploy_skips_and_force_skips_none() {
        let text = render(&deploy_plan(&inputs(true, false)));
        for (id, key) in [("upload-bundle", "bundle"), ("upload-env", "env"), ("upload-users", "users"), ("ship-images", "images")] {
            let line = text.lines().find(|l| l.contains(&format!("[{id}]"))).unwrap();
            assert!(line.ends_with(&format!("skipped when the host's deploy record (.munero-deployed) has the same {key} sha256")), "{line}");
        }
        assert!(text.contains("skipped when the host holds the same sha256"));
        for id in ["compose-up", "load-data", "pull-model"] {
            let line = text.lines().find(|l| l.contains(&format!("[{id}]"))).unwrap();
            assert!(line.contains(".munero-deployed") && line.contains("echo") && line.contains("skipped: "), "{line}");
        }
        let speed = text.lines().find(|l| l.contains("[model-speed]")).unwrap();
        assert!(speed.contains("skipped when this deploy found the stack and the model unchanged"), "{speed}");
        let forced = render(&deploy_plan(&DeployInputs { force: true, ..inputs(true, false) }));
        for line in forced.lines().filter(|l| !l.contains("[write-manifest]")) {
            assert!(!line.contains(".munero-deployed") && !line.contains("skipped"), "{line}");
        }
        assert!(forced.contains("sent whole (--force)"));
        assert!(forced.contains(&compose_up_cmd("munero", false, false, false).to_command_line()));
    }

    #[test]
    fn exposure_probe_expects_the_trials_ssh_port() {
        let open = |port| match smoke_plan("https://h/", &site(), "h", port, &BTreeMap::new(), false, &speed()).pop() {
            Some(Step::ExposureProbe { open, closed, .. }) => (open, closed),
            other => panic!("{other:?}"),
        };
        assert_eq!(open(22), (vec![22, 80, 443], vec![11434, 8000, 3000]));
        assert_eq!(open(2222).0, vec![2222, 80, 443]);
        // Behind port forwards (a local VM) the probe goes to the host ports standing for them.
        let fw: BTreeMap<String, u16> = [("22", 40022), ("443", 40443), ("80", 40080), ("8000", 48000)]
            .into_iter()
            .map(|(g, h)| (g.to_string(), h))
            .collect();
        match smoke_plan("https://127.0.0.1:40443/", &site(), "127.0.0.1", 40022, &fw, false, &speed()).pop() {
            Some(Step::ExposureProbe { open, closed, .. }) => {
                assert_eq!(open, vec![40022, 40080, 40443]);
                assert_eq!(closed, vec![11434, 48000, 3000]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shipped_images_follow_the_env_and_what_this_machine_has() {
        let compose = bundle::files().iter().find(|f| f.path == "docker-compose.yml").unwrap().contents;
        let compose = String::from_utf8_lossy(compose);
        for (key, default, _) in STACK_IMAGES {
            assert!(compose.contains(&format!("${{{key}:-{default}}}")), "{key} defaults to {default} in the compose file");
        }
        for (_, _, ctx, base, default) in APP_BUILDS {
            assert!(compose.contains(&format!("context: ../{ctx}")), "{ctx} is a build context in the compose file");
            assert!(compose.contains(&format!("BASE_IMAGE: ${{{base}:-{default}}}")), "{base} defaults to {default}");
        }
        let b = app_build_argvs(&env::EnvFile::parse("BACKEND_BASE_IMAGE=t/py:1\n").unwrap(), std::path::Path::new("/src"));
        assert_eq!(b[0].join(" "), "docker build --quiet -t munero/backend:local --build-arg BASE_IMAGE=t/py:1 /src/backend");
        let env = env::EnvFile::parse("BACKEND_IMAGE=t/backend:e2e\nCADDY_IMAGE=t/caddy:1\n").unwrap();
        assert_eq!(images_to_ship(&env, |_| false), ["t/backend:e2e", "munero/frontend:local"]);
        assert_eq!(images_to_ship(&env, |i| i == "t/caddy:1"), ["t/backend:e2e", "munero/frontend:local", "t/caddy:1"]);
    }

    #[test]
    fn only_keeps_named_steps_in_plan_order() {
        let p = filter_plan(deploy_plan(&inputs(false, false)), &["upload-env".into(), "check-data".into()]);
        assert_eq!(p.iter().map(Step::id).collect::<Vec<_>>(), ["check-data", "write-manifest", "upload-env"]);
        let p = filter_plan(deploy_plan(&inputs(false, false)), &["check-data".into()]);
        assert_eq!(p.iter().map(Step::id).collect::<Vec<_>>(), ["check-data"]);
    }

    #[test]
    fn compose_commands_detect_the_compose_flavour() {
        let c = compose_up_cmd("munero", true, true, false).to_command_line();
        assert!(c.starts_with("cd munero/deploy && if docker compose version"));
        assert!(c.contains("dc() { docker-compose -f docker-compose.yml -f docker-compose.gpu.yml \"$@\"; }"));
        assert!(c.ends_with("&& dc up -d --build --remove-orphans"));
        let p = pull_model_cmd("munero", false, "qwen2.5-coder:3b", false).to_command_line();
        assert!(p.ends_with("dc exec -T ollama ollama pull qwen2.5-coder:3b"));
        assert!(p.contains("until dc exec -T ollama ollama list"));
        let l = logs_cmd("munero", false, Some("backend"), true, Some("10m")).to_command_line();
        assert!(l.ends_with("dc logs --no-color --follow --since 10m backend"));
        let w = wipe_cmd("/opt/munero", false).to_command_line();
        assert!(w.starts_with("(cd /opt/munero/deploy && MUNERO_COMPOSE_ARGS='-f docker-compose.yml' bash ./wipe_client_data.sh --yes); rc=$?;"), "{w}");
        assert!(w.contains("rm -f -- /opt/munero/data/client.sqlite /opt/munero/data/client.sqlite.part /opt/munero/data/client.sqlite.sha256 /opt/munero/data/client.sqlite.blocks"), "{w}");
        assert!(w.ends_with("exit $rc"), "{w}");
    }

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

    #[test]
    fn a_run_without_compose_up_says_what_ran_and_that_nothing_was_deployed() {
        let plan = deploy_plan(&inputs(false, false));
        let only = |ids: &[&str]| filter_plan(plan.clone(), &ids.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            not_deployed_summary("acme", &only(&["check-data"])).unwrap(),
            "Ran check-data on trial acme; nothing was deployed (nothing was sent to the host)"
        );
        assert_eq!(
            not_deployed_summary("acme", &only(&["upload-data", "upload-env"])).unwrap(),
            "Ran write-manifest, upload-data, upload-env on trial acme; nothing was deployed (the stack is started by compose-up, which did not run)"
        );
        assert_eq!(not_deployed_summary("acme", &only(&["compose-up"])), None);
        assert_eq!(not_deployed_summary("acme", &plan), None);
    }
}
