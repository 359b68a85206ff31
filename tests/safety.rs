//! Safety defects found by probing the CLI (issue 10): each test reproduces one with the real
//! binary, against the Hetzner API fake behind Prism where an API is involved.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The key part of an OpenSSH public key line (`ssh-ed25519 AAAA...`), without the comment.
fn key_of(line: &str) -> String {
    line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn three_creates_of_one_trial_at_once_leave_one_server_whose_keys_are_the_stored_ones() {
    let fake = Fake::start();
    // Long enough for the first run to finish while the others wait for it, however slow the machine.
    let cli = Cli::new(Some(&fake)).env("MUNERO_LOCK_WAIT_S", "120");
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| cli.create("race-demo", &[]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &runs {
        assert_eq!(r.code, 0, "every run finishes (the later ones resume); stderr:\n{}", r.stderr);
    }
    assert!(
        runs.iter().filter(|r| r.stderr.contains("waiting up to")).count() >= 1,
        "a run that found the trial busy says so: {:?}",
        runs.iter().map(|r| &r.stderr).collect::<Vec<_>>()
    );
    assert_eq!(runs.iter().filter(|r| r.json()["resumed"] == false).count(), 1, "exactly one run made the server");

    let servers = fake.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(fake.ssh_keys().len(), 1);
    assert_eq!(fake.firewalls().len(), 1);

    let dir = cli.trial_dir("race-demo");
    let user_data = servers[0]["user_data"].as_str().unwrap();
    let host_pub = key_of(&std::fs::read_to_string(dir.join("ssh_host_ed25519_key.pub")).unwrap());
    assert!(user_data.contains(&format!("ed25519_public: {host_pub}")), "the pinned host key is the server's");
    let host_priv = std::fs::read_to_string(dir.join("ssh_host_ed25519_key")).unwrap();
    assert!(user_data.contains(host_priv.lines().nth(1).unwrap()), "the server got the stored host private key");

    let login_pub = key_of(&std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap());
    let registered = key_of(fake.ssh_keys()[0]["public_key"].as_str().unwrap());
    assert_eq!(registered, login_pub, "the registered ssh key is the stored login key");
    assert!(user_data.contains(&login_pub), "the stored login key is authorised on the server");
    for r in &runs {
        assert_eq!(r.json()["ssh"]["host_public_key"].as_str().map(key_of), Some(host_pub.clone()));
    }
    fake.assert_no_violations();
}

#[test]
fn ssh_from_anywhere_is_refused_with_exit_2_and_nothing_is_created() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    for any in ["0.0.0.0/0", "::/0"] {
        let r = cli.run(&["--output", "json", "create", "open-world", "--provider", "hetzner", "--ssh-from", any]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains(any) && r.stderr.contains("--allow-ssh-from-anywhere"), "{}", r.stderr);
        assert_eq!(r.json()["exit_code"], 2);
    }
    assert!(fake.mutating_requests().is_empty(), "{:?}", fake.mutating_requests());
    assert!(fake.is_empty());
    assert!(!cli.trial_dir("open-world").exists());

    // Said on purpose: accepted, with the warning kept in the JSON document.
    let r = cli
        .run(&["--output", "json", "create", "open-world", "--provider", "hetzner", "--ssh-from", "::/0", "--allow-ssh-from-anywhere", "--dry-run"])
        .ok();
    assert!(r.json()["warnings"][0].as_str().unwrap().contains("whole internet"), "{}", r.stdout);
}

#[test]
fn ssh_from_a_private_range_warns_that_only_a_vpn_reaches_it() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let r = cli.create("vpn-only", &["--ssh-from", "10.20.0.0/16"]).ok();
    assert!(r.stderr.contains("warning: --ssh-from 10.20.0.0/16 is a private range"), "{}", r.stderr);
    let doc = r.json();
    let warnings = doc["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "the public address gets no warning: {warnings:?}");
    assert!(warnings[0].as_str().unwrap().contains("VPN"), "{warnings:?}");
    let fw = &fake.firewalls()[0];
    let ssh = fw["rules"].as_array().unwrap().iter().find(|r| r["port"] == "22").unwrap().clone();
    assert_eq!(ssh["source_ips"], json!(["198.51.100.7/32", "10.20.0.0/16"]));
}

#[test]
fn an_api_that_never_answers_fails_within_the_deadline_naming_the_timeout_and_attempts() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake)).env("MUNERO_HTTP_TIMEOUT_S", "1").env("MUNERO_HTTP_DEADLINE_S", "3");
    fake.fault(json!({"method": "GET", "path_regex": "^/v1/server_types$", "delay": 30, "count": 100}));
    let t0 = Instant::now();
    let r = cli.create("hung-api", &[]);
    let took = t0.elapsed();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no answer from the Hetzner API after"), "{}", r.stderr);
    assert!(r.stderr.contains("attempts of up to 1 s each"), "{}", r.stderr);
    assert!(took < Duration::from_secs(15), "bounded by the 3 s deadline, took {took:?}");
    assert!(fake.is_empty());
}

#[test]
fn ssh_from_auto_says_when_the_echo_service_timed_out() {
    let echo = EchoServer::silent();
    let cli = Cli::new(None).env("MUNERO_IP_ECHO_URL", &echo.url).env("MUNERO_IP_ECHO_TIMEOUT_S", "1");
    let r = cli.run(&["create", "echo-silent", "--provider", "hetzner", "--ssh-from", "auto", "--dry-run"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("timed out after 1 s"), "{}", r.stderr);
    assert!(r.stderr.contains(&echo.url) && r.stderr.contains("explicit CIDR"), "{}", r.stderr);
}

#[test]
fn warn_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let cli = Cli::new(None);
    let dir = cli.trial_dir("broken-record");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("trial.toml"), "this is = = not toml").unwrap();
    let r = cli.run(&["status"]).ok();
    assert!(r.stderr.contains("WARN") && r.stderr.contains("skipping trial record broken-record"), "{}", r.stderr);
    assert!(!r.stderr.contains("\x1b["), "escape codes on a pipe: {:?}", r.stderr);
}

