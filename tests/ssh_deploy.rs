//! The real binary against a real OpenSSH sshd on 127.0.0.1, registered with `create --provider
//! ssh`: dry-run plan equals the steps that run, .env 0600 with no value in any output, corrupt
//! SQLite refused before anything is sent, wrong pinned key refused, a cut upload resumed by the
//! next deploy, unchanged data skipped, `ssh -- cmd` exit status, destroy forgets the host.

mod common;
mod sshd_fixture;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Cli, Run};
use sshd_fixture::{keygen, sha256_file, Sshd};

const TRIAL: &str = "acme-ssh";

struct Setup {
    sshd: Sshd,
    cli: Cli,
    remote: PathBuf,
}

fn setup() -> Setup {
    let sshd = Sshd::start();
    let cli = Cli::new(None);
    let remote = sshd.dir.path().join("remote-home/munero");
    let port = sshd.port.to_string();
    let r = cli.run(&[
        "--output", "json", "create", TRIAL, "--provider", "ssh", "--host", "127.0.0.1", "--port", &port,
        "--user", &sshd.user, "--identity", sshd.client_key.to_str().unwrap(),
        "--host-key", sshd.host_pub.to_str().unwrap(), "--remote-dir", remote.to_str().unwrap(),
    ]);
    let r = r.ok();
    let j = r.json();
    assert_eq!(j["provider"], "ssh");
    assert!(j["host_key_fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    Setup { sshd, cli, remote }
}

/// A valid SQLite database of about `mib` MiB (random blobs, so it does not compress).
fn sqlite_file(path: &Path, mib: usize) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE orders(id INTEGER PRIMARY KEY, country TEXT, amount REAL); CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB);").unwrap();
    c.execute_batch("BEGIN").unwrap();
    for i in 0..100 {
        c.execute("INSERT INTO orders(country, amount) VALUES (?1, ?2)", rusqlite::params![format!("C{}", i % 7), i as f64 * 1.5]).unwrap();
    }
    for _ in 0..mib {
        c.execute("INSERT INTO blobs(b) VALUES (randomblob(1048576))", []).unwrap();
    }
    c.execute_batch("COMMIT").unwrap();
}

fn step_lines(text: &str) -> Vec<String> {
    // Plan lines are " 3. [upload-data] ...", run lines "[3/5] [upload-data] ...": compare from the id on.
    text.lines()
        .filter_map(|l| {
            let (head, rest) = l.trim_start().split_once(' ')?;
            let is_plan = head.strip_suffix('.').is_some_and(|n| n.parse::<u32>().is_ok());
            let is_run = head.starts_with('[') && head.ends_with(']') && head.contains('/');
            ((is_plan || is_run) && rest.starts_with('[')).then(|| rest.to_string())
        })
        .collect()
}

const FILE_STEPS: &str = "check-data,check-env,wait-cloud-init,upload-data,upload-bundle,upload-env";

#[test]
fn dry_run_plan_lists_the_steps_that_run_and_env_is_0600_with_no_value_in_output() {
    let s = setup();
    let data = s.sshd.dir.path().join("client.sqlite");
    sqlite_file(&data, 2);
    let d = data.to_str().unwrap();

    let plan = s.cli.run(&["deploy", TRIAL, "--data", d, "--only", FILE_STEPS, "--dry-run"]).ok();
    assert!(!s.remote.exists(), "a dry run touches nothing on the host");
    let run = s.cli.run(&["deploy", TRIAL, "--data", d, "--only", FILE_STEPS]).ok();
    let planned = step_lines(&plan.stdout);
    let ran = step_lines(&run.stderr);
    // The six asked for, and the manifest that goes with any step that puts files on the host.
    assert_eq!(planned.len(), 7, "{}", plan.stdout);
    assert!(planned.iter().any(|l| l.starts_with("[write-manifest]")), "{}", plan.stdout);
    assert_eq!(planned, ran, "dry-run:\n{}\nrun:\n{}", plan.stdout, run.stderr);

    // Data, stack files, build contexts and .env are on the host.
    let remote_data = s.remote.join("data/client.sqlite");
    assert_eq!(sha256_file(&remote_data), sha256_file(&data));
    for f in ["docker-compose.yml", "docker-compose.gpu.yml", "Caddyfile", "wipe_client_data.sh", "load_client_data.sh"] {
        assert!(s.remote.join("deploy").join(f).is_file(), "{f} missing on the host");
    }
    assert!(s.remote.join("backend/Dockerfile").is_file());
    assert!(s.remote.join("frontend/package.json").is_file());
    assert!(!s.remote.join("frontend/node_modules").exists(), "dependencies are not shipped");
    let env_path = s.remote.join("deploy/.env");
    assert_eq!(common::mode(&env_path), 0o600);

    // The generated secrets are in .env and the local store, never in any output.
    let env = std::fs::read_to_string(&env_path).unwrap();
    let creds = std::fs::read_to_string(s.cli.trial_dir(TRIAL).join("basic-auth.toml")).unwrap();
    assert_eq!(common::mode(&s.cli.trial_dir(TRIAL).join("basic-auth.toml")), 0o600);
    let creds: toml::Value = toml::from_str(&creds).unwrap();
    let password = creds["password"].as_str().unwrap();
    let hash = creds["bcrypt_hash"].as_str().unwrap();
    assert!(env.contains(&format!("BASIC_AUTH_HASH='{hash}'")), "{env}");
    assert!(env.contains("MUNERO_TLS=internal") && env.contains("MUNERO_DOMAIN=127.0.0.1"));
    for out in [plan.all_output(), run.all_output()] {
        assert!(!out.contains(password) && !out.contains(hash), "a secret leaked into the output:\n{out}");
        assert!(out.contains("BASIC_AUTH_HASH"), "keys are named");
    }
    // Same in JSON mode.
    let j = s.cli.run(&["--output", "json", "deploy", TRIAL, "--data", d, "--only", "upload-env"]).ok();
    assert!(!j.all_output().contains(password) && !j.all_output().contains(hash));
}

#[test]
fn corrupt_sqlite_is_refused_before_anything_is_sent() {
    let s = setup();
    let data = s.sshd.dir.path().join("broken.sqlite");
    sqlite_file(&data, 1);
    // Overwrite the middle of the file: pages of the table b-tree become garbage.
    let mut bytes = std::fs::read(&data).unwrap();
    let n = bytes.len();
    for b in &mut bytes[4096..n - 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&data, &bytes).unwrap();
    let r = s.cli.run(&["deploy", TRIAL, "--data", data.to_str().unwrap(), "--only", FILE_STEPS]);
    assert_ne!(r.code, 0, "a corrupt database must stop the deploy");
    assert!(r.stderr.contains("check-data"), "{}", r.stderr);
    assert!(!s.remote.exists(), "nothing may reach the host");
}

#[test]
fn different_pinned_host_key_stops_deploy_shows_both_fingerprints_and_uploads_nothing() {
    let s = setup();
    let other = s.sshd.dir.path().join("impostor");
    keygen(&other, "impostor");
    let pinned = s.cli.trial_dir(TRIAL).join("pinned_host_key.pub");
    std::fs::copy(other.with_extension("pub"), &pinned).unwrap();
    let data = s.sshd.dir.path().join("c.sqlite");
    sqlite_file(&data, 1);
    let r = s.cli.run(&["deploy", TRIAL, "--data", data.to_str().unwrap(), "--only", FILE_STEPS]);
    assert_eq!(r.code, 1);
    let fp = |p: &Path| {
        let o = std::process::Command::new("ssh-keygen").arg("-lf").arg(p).output().unwrap();
        String::from_utf8_lossy(&o.stdout).split_whitespace().nth(1).unwrap().to_string()
    };
    assert!(r.stderr.contains("host key mismatch"), "{}", r.stderr);
    assert!(r.stderr.contains(&fp(&pinned)), "expected fingerprint shown: {}", r.stderr);
    assert!(r.stderr.contains(&fp(&s.sshd.host_pub)), "presented fingerprint shown: {}", r.stderr);
    assert!(!s.remote.exists(), "nothing may reach the host");
}

#[test]
fn deploy_after_a_cut_sends_only_the_rest_then_skips_unchanged_data() {
    let s = setup();
    let data = s.sshd.dir.path().join("big.sqlite");
    sqlite_file(&data, 384);
    let size = std::fs::metadata(&data).unwrap().len();
    let d = data.to_str().unwrap().to_string();
    let part = s.remote.join("data/client.sqlite.part");

    // First deploy: cut the connection once 100 MiB are on the host.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_munero-infra"))
        .args(["--state-dir", s.cli.state_dir().to_str().unwrap(), "deploy", TRIAL, "--data", &d, "--only", "check-data,upload-data"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if have > 100 << 20 {
            assert!(s.sshd.kill_connections() > 0);
            break;
        }
        assert!(Instant::now() < deadline, "upload did not progress");
        assert!(child.try_wait().unwrap().is_none(), "deploy ended before the cut");
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = child.wait_with_output().unwrap();
    assert!(!first.status.success(), "the cut must fail the first deploy");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept < size);

    // Second deploy: resumes at the part's size and sends only the rest.
    let second: Run = s.cli.run(&["--output", "json", "deploy", TRIAL, "--data", &d, "--only", "check-data,upload-data"]).ok();
    let up = &second.json()["results"]["upload"];
    assert_eq!(up["skipped"], false);
    assert_eq!(up["resumed_from"].as_u64().unwrap(), kept);
    assert_eq!(up["bytes_sent"].as_u64().unwrap(), size - kept, "only the rest is sent");
    assert!(second.stderr.contains("resumed at"), "{}", second.stderr);
    assert_eq!(sha256_file(&s.remote.join("data/client.sqlite")), sha256_file(&data));
    assert!(!part.exists());

    // Third: unchanged, nothing sent.
    let third = s.cli.run(&["--output", "json", "deploy", TRIAL, "--data", &d, "--only", "upload-data"]).ok();
    let up = &third.json()["results"]["upload"];
    assert_eq!(up["skipped"], true);
    assert_eq!(up["bytes_sent"], 0);
}

#[test]
fn ssh_command_passes_exit_status_and_destroy_forgets_the_host() {
    let s = setup();
    let r = s.cli.run(&["ssh", TRIAL, "--", "echo hello; echo oops >&2; exit 3"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("hello") && r.stderr.contains("oops"));

    // Without a command: OpenSSH with a known_hosts holding only the pinned key (no terminal
    // here, so the shell reads an empty stdin and ends).
    let shell = s.cli.run(&["ssh", TRIAL]);
    assert_eq!(shell.code, 0, "{shell:?}");
    assert!(!shell.stderr.contains("Permanently added"), "nothing is trusted on first use: {}", shell.stderr);

    let data = s.sshd.dir.path().join("c.sqlite");
    sqlite_file(&data, 1);
    s.cli.run(&["deploy", TRIAL, "--data", data.to_str().unwrap(), "--only", "upload-data"]).ok();
    assert!(s.remote.exists());
    let wipe = s.cli.run(&["wipe", TRIAL, "--dry-run"]).ok();
    assert!(wipe.stdout.contains("wipe_client_data.sh --yes"), "{}", wipe.stdout);
    let no = s.cli.run(&["destroy", TRIAL]);
    assert_eq!(no.code, 2, "destroy without --yes from a non-terminal is refused");
    s.cli.run(&["destroy", TRIAL, "--yes"]).ok();
    assert!(!s.remote.exists(), "the stack directory is removed from the host");
    assert!(!s.cli.trial_dir(TRIAL).exists(), "the local record is forgotten");
}

#[test]
fn without_data_deploy_uses_the_bundled_sample_dataset() {
    let s = setup();
    let plan = s.cli.run(&["deploy", TRIAL, "--dry-run"]).ok();
    assert!(plan.stdout.contains("(bundled sample)"), "{}", plan.stdout);
    assert!(!s.cli.state_dir().join("sample").exists(), "a dry run generates nothing");

    let r = s.cli.run(&["--output", "json", "deploy", TRIAL, "--only", "check-data,upload-data"]).ok();
    let j = r.json();
    assert!(j["results"]["data"]["tables"].as_u64().unwrap() >= 2, "{j}");
    let sample = std::fs::read_dir(s.cli.state_dir().join("sample"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .expect("the sample dataset was generated in the state dir");
    assert_eq!(sha256_file(&s.remote.join("data/client.sqlite")), sha256_file(&sample));
}
