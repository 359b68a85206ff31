//! Safety defects found by probing the CLI (issue 10): each test reproduces one with the real
//! binary, against the Hetzner API fake behind Prism where an API is involved.

mod common;

use common::*;

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
