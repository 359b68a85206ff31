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
    // The six asked for, the manifest that goes with any step that puts files on the host, and
    // the Basic Auth users file Caddy cannot start without, which goes with the stack files.
    assert_eq!(planned.len(), 8, "{}", plan.stdout);
    assert!(planned.iter().any(|l| l.starts_with("[write-manifest]")), "{}", plan.stdout);
    assert!(planned.iter().any(|l| l.starts_with("[upload-users]")), "{}", plan.stdout);
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
    let users = s.remote.join("deploy/auth/users.caddy");
    assert_eq!(common::mode(&users), 0o600);
    let users = std::fs::read_to_string(&users).unwrap();
    assert!(users.contains(&format!("\n{} {hash}\n", creds["user"].as_str().unwrap())), "{users}");
    assert!(!users.contains(password));
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

/// The number of tables and of `orders` rows in a database file read alone (no sidecar files).
fn tables_and_rows(db: &Path) -> (i64, i64) {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("alone.sqlite");
    std::fs::copy(db, &alone).unwrap();
    let c = rusqlite::Connection::open(&alone).unwrap();
    let tables = c
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
        .unwrap();
    let rows = c.query_row("SELECT count(*) FROM orders", [], |r| r.get(0)).unwrap_or(-1);
    (tables, rows)
}

#[test]
fn wal_database_with_uncheckpointed_writes_reaches_the_host_with_its_rows() {
    let s = setup();
    let data = s.sshd.dir.path().join("live.sqlite");
    // A running app: WAL mode, no automatic checkpoint, connection held open throughout.
    let app = rusqlite::Connection::open(&data).unwrap();
    app.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)).unwrap();
    app.execute_batch(
        "PRAGMA wal_autocheckpoint=0; CREATE TABLE orders(id INTEGER PRIMARY KEY, amount REAL); CREATE TABLE customers(id, name);",
    )
    .unwrap();
    for i in 0..500 {
        app.execute("INSERT INTO orders(amount) VALUES (?1)", [i as f64]).unwrap();
    }
    assert!(std::fs::metadata(format!("{}-wal", data.display())).unwrap().len() > 0, "the rows are in the -wal");
    let d = data.to_str().unwrap();

    let r = s.cli.run(&["--output", "json", "deploy", TRIAL, "--data", d, "--only", "check-data,upload-data"]).ok();
    let remote = s.remote.join("data/client.sqlite");
    assert_eq!(tables_and_rows(&remote), (2, 500), "the host has the tables and rows of the -wal");
    let up = &r.json()["results"]["upload"];
    assert_eq!(up["snapshot"], true, "{up}");
    assert!(up["snapshot_reason"].as_str().unwrap().contains("-wal"), "{up}");
    assert!(r.stderr.contains("snapshot:"), "the progress says a snapshot was uploaded:\n{}", r.stderr);
    assert_eq!(common::mode(&s.cli.state_dir().join("upload-hashes.json")), 0o600);
    let left: Vec<_> = std::fs::read_dir(s.cli.state_dir().join("snapshots")).unwrap().collect();
    assert!(left.is_empty(), "the local copy of the client data is removed: {left:?}");

    // Unchanged data: the same snapshot bytes, nothing sent. Then a new write is sent.
    let again = s.cli.run(&["--output", "json", "deploy", TRIAL, "--data", d, "--only", "upload-data"]).ok();
    assert_eq!(again.json()["results"]["upload"]["skipped"], true, "{}", again.stdout);
    app.execute("INSERT INTO orders(amount) VALUES (1)", []).unwrap();
    s.cli.run(&["deploy", TRIAL, "--data", d, "--only", "upload-data"]).ok();
    assert_eq!(tables_and_rows(&remote), (2, 501));
    drop(app);

    // A plain rollback-journal file goes as it is.
    let plain = s.sshd.dir.path().join("plain.sqlite");
    sqlite_file(&plain, 1);
    let r = s.cli.run(&["--output", "json", "deploy", TRIAL, "--data", plain.to_str().unwrap(), "--only", "upload-data"]).ok();
    assert_eq!(r.json()["results"]["upload"]["snapshot"], false);
    assert_eq!(sha256_file(&remote), sha256_file(&plain));
}

#[test]
fn env_values_with_quotes_and_shell_characters_reach_the_host_as_compose_reads_them() {
    use munero_infra::deploy::env::EnvFile;
    let s = setup();
    let values: &[(&str, &str, &str)] = &[
        // (key, line in the operator's file, the value compose reads from it)
        ("APOS", "APOS=it's-a-secret", "it's-a-secret"),
        ("DQUOTE", r#"DQUOTE="say \"hi\"""#, r#"say "hi""#),
        ("DOLLAR", "DOLLAR='pa$$word$x'", "pa$$word$x"),
        ("BACKSLASH", r#"BACKSLASH="C:\\path\\""#, r"C:\path\"),
        ("SINGLE_BS", r"SINGLE_BS='a\nb\c'", r"a\nb\c"),
        ("HASH", "HASH='a # b'", "a # b"),
        ("SPACES", "SPACES='  two  words '", "  two  words "),
        ("NEWLINE", r#"NEWLINE="l1\nl2""#, "l1\nl2"),
        ("MIXED", r#"MIXED="it's \"$$x\" \\ # y""#, r#"it's "$x" \ # y"#),
    ];
    let mut text = String::from("MUNERO_TLS=internal\n");
    for (_, line, _) in values {
        text.push_str(line);
        text.push('\n');
    }
    let env_file = s.sshd.dir.path().join("client.env");
    std::fs::write(&env_file, &text).unwrap();

    let r = s.cli.run(&["deploy", TRIAL, "--env", env_file.to_str().unwrap(), "--only", "check-env,upload-env"]).ok();
    let on_host = std::fs::read_to_string(s.remote.join("deploy/.env")).unwrap();
    assert!(on_host.contains("\nAPOS=\"it's-a-secret\"\n"), "{on_host}");
    let parsed = EnvFile::parse(&on_host).unwrap();
    for (key, _, want) in values {
        assert_eq!(parsed.get(key), Some(*want), "{key} on the host:\n{on_host}");
        if want.len() > 3 {
            assert!(!r.all_output().contains(want), "the value of {key} was printed");
        }
    }

    // What docker compose itself reads, when this machine has it.
    let has_compose = std::process::Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_compose {
        eprintln!("skipped: the `docker compose config` check (no docker compose here)");
        return;
    }
    let dir = s.remote.join("deploy");
    std::fs::write(dir.join("probe.yml"), "services:\n  probe:\n    image: busybox\n    env_file: [.env]\n").unwrap();
    let out = std::process::Command::new("docker")
        .args(["compose", "-f", "probe.yml", "--env-file", ".env", "config", "--format", "json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let envs = &cfg["services"]["probe"]["environment"];
    for (key, _, want) in values {
        // `config` prints a compose file, where a literal `$` is written `$$`.
        let printed = want.replace('$', "$$");
        assert_eq!(envs[key].as_str(), Some(printed.as_str()), "{key} as docker compose reads it");
    }
}

#[test]
fn bad_data_exits_2_naming_the_path_in_a_dry_run_and_a_real_run() {
    let s = setup();
    let dir = s.sshd.dir.path().join("exports");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = s.sshd.dir.path().join("orders.csv");
    std::fs::write(&csv, "id,amount\n1,2\n").unwrap();
    let missing = s.sshd.dir.path().join("missing.sqlite");
    for (path, why) in [(&dir, "is a directory"), (&csv, "is not an SQLite database"), (&missing, "no such file")] {
        let p = path.to_str().unwrap();
        for dry in [true, false] {
            let mut args = vec!["deploy", TRIAL, "--data", p, "--only", FILE_STEPS];
            if dry {
                args.push("--dry-run");
            }
            let r = s.cli.run(&args);
            assert_eq!(r.code, 2, "{args:?}: {r:?}");
            assert!(r.stderr.contains(p) && r.stderr.contains(why) && r.stderr.contains("pass --data"), "{}", r.stderr);
        }
    }
    assert!(!s.remote.exists(), "nothing may reach the host");
}

#[test]
fn only_check_data_says_what_ran_and_that_nothing_was_deployed() {
    let s = setup();
    let data = s.sshd.dir.path().join("c.sqlite");
    sqlite_file(&data, 1);
    let r = s.cli.run(&["deploy", TRIAL, "--data", data.to_str().unwrap(), "--only", "check-data"]).ok();
    let out = r.all_output();
    assert!(out.contains(&format!("Ran check-data on trial {TRIAL}; nothing was deployed")), "{out}");
    assert!(!out.contains("deployed in"), "{out}");
    let j = s.cli.run(&["--output", "json", "deploy", TRIAL, "--data", data.to_str().unwrap(), "--only", "check-data"]).ok();
    assert_eq!(j.json()["deployed"], false);
}
