//! Every bad input exits 2 with a message naming the value, and nothing is created.

mod common;

use common::*;

/// (args after `create`, text the error must contain)
fn bad_creates(ca_missing: &str, ca_not_pem: &str) -> Vec<(Vec<String>, String)> {
    let past = rfc3339(now_unix() - 3600);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (s(&["Bad_Name", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32"]), "\"Bad_Name\"".into()),
        (s(&["ab", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32"]), "\"ab\"".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "300.1.2.3/32"]), "300.1.2.3/32".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/24"]), "198.51.100.0/24".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--days", "0"]), "--days 0".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--days", "91"]), "--days 91".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--expires", &past]), past.clone()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--expires", "next-week"]), "next-week".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--domain", "not_a.domain"]), "not_a.domain".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--size", "gpu"]), "--provider aws".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--size", "cpx999"]), "cpx999".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "auto"]), "explicit CIDR".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--location", "mars1"]), "\"mars1\"".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--image", "windows-95"]), "\"windows-95\"".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--image", "987654"]), "\"987654\"".into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--trusted-ca", ca_missing]), ca_missing.into()),
        (s(&["acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--trusted-ca", ca_not_pem]), ca_not_pem.into()),
        (s(&["acme", "--provider", "aws", "--ssh-from", "198.51.100.7/32"]), "no AWS credentials".into()),
        (s(&["acme", "--provider", "local", "--size", "gpu"]), "no GPU passthrough".into()),
        (s(&["acme", "--provider", "ssh", "--ssh-from", "198.51.100.7/32"]), "--host HOST".into()),
        (s(&["acme", "--provider", "gcp", "--ssh-from", "198.51.100.7/32"]), "gcp".into()),
    ]
}

#[test]
fn every_bad_create_input_exits_2_names_the_value_and_creates_nothing() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let ca_missing = cli.cwd.path().join("missing-ca.pem").display().to_string();
    let ca_not_pem = cli.cwd.path().join("not-pem.txt");
    std::fs::write(&ca_not_pem, "hello").unwrap();
    let ca_not_pem = ca_not_pem.display().to_string();
    for (args, needle) in bad_creates(&ca_missing, &ca_not_pem) {
        let mut a = vec!["create"];
        a.extend(args.iter().map(String::as_str));
        let r = cli.run(&a);
        assert_eq!(r.code, 2, "{a:?} should exit 2; stderr:\n{}", r.stderr);
        assert!(r.stderr.contains(&needle), "{a:?}: message should name {needle:?}; got:\n{}", r.stderr);
        // The same in JSON mode: one document with ok=false.
        let mut j = vec!["--output", "json"];
        j.extend(a.iter().copied());
        let rj = cli.run(&j);
        assert_eq!(rj.code, 2, "{j:?}");
        if !rj.stdout.trim().is_empty() {
            assert_eq!(rj.json()["ok"], false, "{j:?}");
        }
    }
    assert!(fake.is_empty(), "bad input created something: {}", fake.state());
    assert!(fake.mutating_requests().is_empty(), "bad input sent {:?}", fake.mutating_requests());
    assert!(!cli.state_dir().join("trials").exists(), "bad input wrote local state");
    fake.assert_no_violations();
}

#[test]
fn missing_token_exits_2_naming_hcloud_token_and_dry_run_works_without_it() {
    let cli = Cli::new(None);
    let r = cli.create("acme-demo", &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("HCLOUD_TOKEN"), "{}", r.stderr);
    assert_eq!(r.json()["ok"], false);

    let d = cli.create("acme-demo", &["--dry-run"]).ok();
    let doc = d.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["server_type_checked"], false);
    let steps: Vec<&str> = doc["plan"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        vec!["generate_key", "generate_key", "ensure_ssh_key", "ensure_firewall", "ensure_server", "wait_running", "record_trial"]
    );
    assert!(doc["plan_text"].as_str().unwrap().contains("rule: in tcp 22 from 198.51.100.7/32"));
    assert!(!d.all_output().contains("BEGIN OPENSSH PRIVATE KEY"));
    assert!(!cli.state_dir().exists(), "a dry run writes nothing");

    // destroy and teardown without credentials.
    let t = cli.run(&["teardown", "--expired"]);
    assert_eq!(t.code, 2);
    assert!(t.stderr.contains("HCLOUD_TOKEN"));
}

#[test]
fn existing_server_without_local_record_is_refused_before_anything_is_made() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    fake.seed(serde_json::json!({"servers": [{"name": "orphaned", "server_type": "cx22", "image": "ubuntu-24.04",
        "location": "fsn1", "labels": {"munero-managed": "true", "munero-trial": "orphaned", "munero-expires": "2000000000"}}]}));
    let r = cli.create("orphaned", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no local record"), "{}", r.stderr);
    assert!(fake.mutating_requests().is_empty());
}

#[test]
fn unknown_config_key_is_an_error_naming_it() {
    let cli = Cli::new(None);
    std::fs::write(cli.cwd.path().join("munero.toml"), "provider = \"hetzner\"\nsshfrom = [\"1.2.3.4/32\"]\n").unwrap();
    let r = cli.run(&["status"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("sshfrom"), "{}", r.stderr);
}

#[test]
fn config_supplies_defaults_that_flags_override() {
    let cli = Cli::new(None);
    std::fs::write(
        cli.cwd.path().join("munero.toml"),
        "provider = \"hetzner\"\nssh_from = [\"192.0.2.0/24\"]\ndocker_source = \"distro\"\n[hetzner]\nsize_cpu = \"ccx33\"\nlocation = \"hel1\"\n",
    )
    .unwrap();
    let doc = cli.run(&["--output", "json", "create", "cfg-trial", "--dry-run"]).ok().json();
    assert_eq!(doc["server_type"], "ccx33");
    assert_eq!(doc["ssh_from"], serde_json::json!(["192.0.2.0/24"]));
    assert!(doc["user_data"].as_str().unwrap().contains("docker.io"));
    assert!(doc["plan_text"].as_str().unwrap().contains("location=hel1"));
    let doc = cli.run(&["--output", "json", "create", "cfg-trial", "--dry-run", "--size", "cpx31", "--location", "nbg1"]).ok().json();
    assert_eq!(doc["server_type"], "cpx31");
    assert!(doc["plan_text"].as_str().unwrap().contains("location=nbg1"));
}

#[test]
fn every_command_prints_exactly_one_json_document() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    for args in [
        vec!["--output", "json", "create", "one-doc", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--dry-run"],
        vec!["--output", "json", "create", "one-doc", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32"],
        vec!["--output", "json", "status"],
        vec!["--output", "json", "list", "one-doc"],
        vec!["--output", "json", "status", "nope-nope"],
        vec!["--output", "json", "teardown", "--expired", "--dry-run"],
        vec!["--output", "json", "teardown", "--expired"],
        vec!["--output", "json", "destroy", "one-doc", "--dry-run"],
        vec!["--output", "json", "destroy", "one-doc", "--yes"],
        vec!["--output", "json", "destroy", "one-doc", "--yes"],
    ] {
        let r = cli.run(&args);
        let doc = r.json();
        assert!(doc.get("ok").is_some(), "{args:?}: {doc}");
        assert_eq!(doc["ok"] == true, r.code == 0, "{args:?}: code {} doc {doc}", r.code);
    }
}

#[test]
fn a_closed_output_pipe_ends_the_process_without_a_panic() {
    use std::process::{Command, Stdio};
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_munero-infra"))
        .args(["create", "acme", "--provider", "hetzner", "--ssh-from", "198.51.100.7/32", "--dry-run"])
        .env("MUNERO_STATE_DIR", state.path())
        .env_remove("HCLOUD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end of stdout before the plan is printed, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panicked on a closed pipe:\n{stderr}");
    assert_ne!(out.status.code(), Some(101), "exit 101 is a panic; stderr:\n{stderr}");
}
