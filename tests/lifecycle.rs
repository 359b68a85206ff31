//! The lifecycle interface across kinds of host: every mutating command prints the plan that
//! runs, on a cloud trial (the Hetzner fake, its host played by a real sshd holding the trial's
//! injected host key) and on an existing host (a real sshd); an existing host is cleaned of what
//! deploy put there and nothing else; a host that cannot be reached is never reported destroyed;
//! teardown leaves alone what is not ours and needs about four API requests per trial.

mod common;
mod sshd_fixture;

use std::path::Path;

use common::{now_unix, rfc3339, Cli, Fake};
use serde_json::{json, Value};
use sshd_fixture::Sshd;

const FILE_STEPS: &str = "check-data,check-env,upload-data,upload-bundle,upload-env";

fn sqlite(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("CREATE TABLE sales(id INTEGER PRIMARY KEY, amount REAL); INSERT INTO sales(amount) VALUES (1.5), (2.5);")
        .unwrap();
}

/// Register an existing host (the sshd fixture) as trial `trial` with its stack in `remote_dir`.
fn register(cli: &Cli, sshd: &Sshd, trial: &str, remote_dir: &Path, days: &str) -> Value {
    let port = sshd.port.to_string();
    cli.run(&[
        "--output", "json", "create", trial, "--provider", "ssh", "--host", "127.0.0.1", "--port", &port, "--user",
        &sshd.user, "--identity", sshd.client_key.to_str().unwrap(), "--host-key", sshd.host_pub.to_str().unwrap(),
        "--remote-dir", remote_dir.to_str().unwrap(), "--days", days,
    ])
    .ok()
    .json()
}

/// A cloud trial made at the fake, whose "server" is a real sshd serving the trial's injected
/// host key and accepting its login key, as cloud-init sets it up on a real VM.
fn cloud_trial_on_sshd(fake: &Fake, cli: &Cli, trial: &str, remote_dir: &Path) -> Sshd {
    cli.create(trial, &["--days", "3"]).ok();
    let dir = cli.trial_dir(trial);
    let sshd = Sshd::start_with_host_key(Some(&dir.join("ssh_host_ed25519_key")));
    sshd.authorize(&std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap());
    let path = dir.join("trial.toml");
    let mut t: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    t.insert("ipv4".into(), "127.0.0.1".into());
    t.insert("ssh_port".into(), toml::Value::Integer(sshd.port.into()));
    t.insert("ssh_user".into(), sshd.user.clone().into());
    t.insert("remote_dir".into(), remote_dir.to_str().unwrap().into());
    std::fs::write(&path, toml::to_string(&t).unwrap()).unwrap();
    let _ = fake;
    sshd
}

/// A wipe script that only says what it would do: these hosts run no Docker engine.
fn stub_wipe_script(remote_dir: &Path) {
    std::fs::write(remote_dir.join("deploy/wipe_client_data.sh"), "echo 'receipt: client data wiped (stub)'\n").unwrap();
}

fn plan_of(run: common::Run) -> Value {
    let doc = run.ok().json();
    assert!(doc["plan"].as_array().is_some_and(|a| !a.is_empty()), "no plan in {doc}");
    doc["plan"].clone()
}

/// Dry run, then the real run with the same arguments: the plans must be equal.
fn same_plan(cli: &Cli, args: &[&str]) -> Value {
    let mut dry = vec!["--output", "json"];
    dry.extend_from_slice(args);
    dry.push("--dry-run");
    let planned = plan_of(cli.run(&dry));
    let mut real = vec!["--output", "json"];
    real.extend_from_slice(args);
    let ran = plan_of(cli.run(&real));
    assert_eq!(planned, ran, "{args:?}: the dry run printed another plan than the one that ran");
    ran
}

#[test]
fn every_mutating_command_runs_the_plan_its_dry_run_printed_on_every_kind_of_host() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("client.sqlite");
    sqlite(&data);
    let d = data.to_str().unwrap();

    // An existing host: create (register), deploy, wipe, destroy.
    let sshd = Sshd::start();
    let on_host = work.path().join("existing");
    let port = sshd.port.to_string();
    let create = same_plan(&cli, &[
        "create", "plan-host", "--provider", "ssh", "--host", "127.0.0.1", "--port", &port, "--user", &sshd.user,
        "--identity", sshd.client_key.to_str().unwrap(), "--host-key", sshd.host_pub.to_str().unwrap(),
        "--remote-dir", on_host.to_str().unwrap(),
    ]);
    // The dry run above created nothing; the real one did, so run it again to compare (resume).
    assert_eq!(create.as_array().unwrap()[1]["step"], "verify_login");
    let deploy = same_plan(&cli, &["deploy", "plan-host", "--data", d, "--only", FILE_STEPS]);
    assert!(deploy.to_string().contains("write_manifest"), "{deploy}");
    stub_wipe_script(&on_host);
    same_plan(&cli, &["wipe", "plan-host", "--yes"]);
    let destroy = same_plan(&cli, &["destroy", "plan-host", "--yes"]);
    assert_eq!(destroy.as_array().unwrap().iter().filter(|s| s["step"] == "on_host").count(), 2);
    assert!(!cli.trial_dir("plan-host").exists());
    assert!(!on_host.exists(), "the stack directory deploy made is gone");

    // A cloud trial: deploy, wipe, destroy, and teardown of another, expired one.
    let in_cloud = work.path().join("cloud");
    let _vm = cloud_trial_on_sshd(&fake, &cli, "plan-cloud", &in_cloud);
    same_plan(&cli, &["deploy", "plan-cloud", "--data", d, "--only", FILE_STEPS]);
    assert!(in_cloud.join("data/client.sqlite").is_file());
    stub_wipe_script(&in_cloud);
    same_plan(&cli, &["wipe", "plan-cloud", "--yes"]);
    assert!(!in_cloud.join("data/client.sqlite").exists(), "wipe removes the uploaded copy");
    let destroy = same_plan(&cli, &["destroy", "plan-cloud", "--yes"]);
    let kinds: Vec<&str> = destroy.as_array().unwrap().iter().filter_map(|s| s["kind"].as_str()).collect();
    assert_eq!(kinds, ["server", "firewall", "ssh_key"]);
    assert!(fake.servers().is_empty());

    let soon = rfc3339(now_unix() + 3600);
    cli.create("plan-expired", &["--expires", &soon]).ok();
    let at = rfc3339(now_unix() + 7200);
    let teardown = same_plan(&cli, &["teardown", "--expired", "--at", &at]);
    let steps: Vec<&str> = teardown.as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["delete_all", "delete_all", "delete_all", "verify_gone", "forget_local"]);
    assert!(fake.is_empty());
    fake.assert_no_violations();
}

#[test]
fn destroy_of_an_existing_host_removes_what_deploy_put_there_and_nothing_else() {
    let cli = Cli::new(None);
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    // The client's own directory, chosen as the stack directory: it held files before.
    let srv = work.path().join("srv");
    std::fs::create_dir_all(srv.join("clientapp")).unwrap();
    std::fs::write(srv.join("clientapp/important.txt"), "x").unwrap();
    register(&cli, &sshd, "keep-theirs", &srv, "3");
    let data = work.path().join("client.sqlite");
    sqlite(&data);
    cli.run(&["deploy", "keep-theirs", "--data", data.to_str().unwrap(), "--only", FILE_STEPS]).ok();
    assert!(srv.join("deploy/.env").is_file() && srv.join("data/client.sqlite").is_file());

    let out = cli.run(&["destroy", "keep-theirs", "--yes"]).ok();
    assert_eq!(std::fs::read_to_string(srv.join("clientapp/important.txt")).unwrap(), "x", "{}", out.stderr);
    for ours in ["deploy", "backend", "frontend", "data", ".munero-manifest"] {
        assert!(!srv.join(ours).exists(), "{ours} is left on the host");
    }
    assert!(srv.is_dir(), "a directory the tool did not make stays");

    // Registered but never deployed: nothing of ours there, so nothing goes.
    let bare = work.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::write(bare.join("notes.txt"), "theirs").unwrap();
    register(&cli, &sshd, "never-deployed", &bare, "3");
    cli.run(&["destroy", "never-deployed", "--yes"]).ok();
    assert!(bare.join("notes.txt").exists());
}

#[test]
fn a_remote_dir_of_the_root_the_home_or_a_system_path_is_refused() {
    let cli = Cli::new(None);
    let sshd = Sshd::start();
    let port = sshd.port.to_string();
    for bad in ["/", "/etc", "/home/deploy", "~", "/usr/"] {
        let r = cli.run(&[
            "create", "bad-dir", "--provider", "ssh", "--host", "127.0.0.1", "--port", &port, "--user", "deploy",
            "--identity", sshd.client_key.to_str().unwrap(), "--host-key", sshd.host_pub.to_str().unwrap(),
            "--remote-dir", bad,
        ]);
        assert_eq!(r.code, 2, "--remote-dir {bad}: {}", r.stderr);
        assert!(r.stderr.contains("--remote-dir"), "{}", r.stderr);
        assert!(!cli.trial_dir("bad-dir").exists());
    }
}

#[test]
fn an_unreachable_existing_host_is_a_failed_teardown_and_only_forget_drops_its_record() {
    let cli = Cli::new(None);
    let work = tempfile::tempdir().unwrap();
    let sshd = Sshd::start();
    register(&cli, &sshd, "gone-dark", &work.path().join("stack"), "1");
    drop(sshd); // the host is down from here on
    let at = rfc3339(now_unix() + 3 * 86_400);

    let r = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["destroyed"], json!([]), "{doc}");
    assert_eq!(doc["failed"][0]["trial"], "gone-dark");
    assert!(doc["failed"][0]["error"].as_str().unwrap().contains("client data may still be on it"), "{doc}");
    assert!(cli.trial_dir("gone-dark").join("trial.toml").exists(), "the record stays for the next run");

    let r = cli.run(&["destroy", "gone-dark", "--yes"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--forget"), "{}", r.stderr);
    assert!(cli.trial_dir("gone-dark").exists());

    let r = cli.run(&["destroy", "gone-dark", "--yes", "--forget"]).ok();
    assert!(r.stderr.contains("may still be on it"), "{}", r.stderr);
    assert!(!cli.trial_dir("gone-dark").exists());
}

#[test]
fn teardown_keeps_a_managed_firewall_that_guards_an_unmanaged_server() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let past = (now_unix() - 60).to_string();
    fake.seed(json!({
        "firewalls": [{"name": "munero-stale", "rules": [],
                       "labels": {"munero-managed": "true", "munero-trial": "stale", "munero-expires": past}}],
        "servers": [{"name": "customer-prod", "labels": {}, "server_type": "cx22", "image": "ubuntu-24.04",
                     "location": "fsn1", "firewalls": ["munero-stale"]}]
    }));
    let r = cli.run(&["--output", "json", "teardown", "--expired"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["failed"][0]["trial"], "stale", "{doc}");
    let err = doc["failed"][0]["error"].as_str().unwrap();
    assert!(err.contains("customer-prod") && err.contains("kept"), "{err}");
    assert_eq!(fake.names("firewalls"), vec!["munero-stale"]);
    let prod = fake.servers().into_iter().find(|s| s["name"] == "customer-prod").unwrap();
    assert_eq!(prod["public_net"]["firewalls"].as_array().map(Vec::len), Some(1), "its firewall is still applied: {prod}");
    let changed: Vec<Value> = fake.mutating_requests();
    assert!(changed.iter().all(|r| !r["path"].as_str().unwrap_or("").contains("remove_from_resources")), "{changed:?}");
}

#[test]
fn teardown_of_many_trials_needs_a_fixed_number_of_api_requests_per_trial_and_constant_listings() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let past = (now_unix() - 60).to_string();
    let n = 12;
    let labels = |t: &str| json!({"munero-managed": "true", "munero-trial": t, "munero-expires": past});
    let names: Vec<String> = (0..n).map(|i| format!("old-{i:02}")).collect();
    fake.seed(json!({
        "ssh_keys": names.iter().map(|t| json!({"name": format!("munero-{t}"), "labels": labels(t)})).collect::<Vec<_>>(),
        "firewalls": names.iter().map(|t| json!({"name": format!("munero-{t}"), "labels": labels(t), "rules": []})).collect::<Vec<_>>(),
        "servers": names.iter().map(|t| json!({"name": t, "labels": labels(t), "server_type": "cx22", "image": "ubuntu-24.04",
                                              "location": "fsn1", "firewalls": [format!("munero-{t}")]})).collect::<Vec<_>>(),
    }));
    let before = fake.requests().len();
    let doc = cli.run(&["--output", "json", "teardown", "--expired"]).ok().json();
    assert_eq!(doc["destroyed"].as_array().unwrap().len(), n);
    assert!(fake.is_empty());
    let log = fake.requests();
    let used = log.len() - before;
    // 6 per trial (server, firewall and key deleted, then each looked up again for the
    // receipt) plus the listings and action polls, which do not grow with the trials.
    assert!(used <= 6 * n + 16, "{used} API requests for {n} trials");
    let listings = log[before..]
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"].as_str().is_some_and(|p| p.trim_start_matches("/v1/").chars().all(|c| c.is_ascii_lowercase() || c == '_')))
        .count();
    assert!(listings <= 16, "{listings} listings for {n} trials");
    assert_eq!(doc["receipts"].as_array().map(Vec::len), Some(n), "a receipt per trial");
    assert!(doc["receipts"].as_array().unwrap().iter().all(|r| r["complete"] == true));
    fake.assert_no_violations();
}

#[test]
fn deploy_to_a_port_that_refuses_connections_fails_fast_saying_so() {
    let cli = Cli::new(None).env("MUNERO_SSH_REFUSED_S", "3").env("MUNERO_CLOUD_INIT_TIMEOUT", "120");
    let work = tempfile::tempdir().unwrap();
    let sshd = Sshd::start();
    register(&cli, &sshd, "no-sshd", &work.path().join("stack"), "3");
    drop(sshd); // nothing listens on the port any more: connections are refused, not unanswered
    let r = cli.run(&["deploy", "no-sshd", "--only", "wait-cloud-init"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("refused SSH connections"), "{}", r.stderr);
    assert!(!r.stderr.contains("not ready after 120s"), "{}", r.stderr);
}
