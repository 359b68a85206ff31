//! `teardown --expired` also ends trials on hosts registered with `--provider ssh`: they have no
//! provider API, so their local record is what finds them; an expired one is wiped and forgotten,
//! a live one is kept, and no cloud credentials are needed for that.

mod common;
mod sshd_fixture;

use std::path::PathBuf;

use common::{now_unix, rfc3339, Cli};
use sshd_fixture::Sshd;

fn register(cli: &Cli, sshd: &Sshd, trial: &str, days: &str) -> PathBuf {
    let remote = sshd.dir.path().join(format!("remote-home/{trial}"));
    let port = sshd.port.to_string();
    cli.run(&[
        "create", trial, "--provider", "ssh", "--host", "127.0.0.1", "--port", &port, "--user", &sshd.user,
        "--identity", sshd.client_key.to_str().unwrap(), "--host-key", sshd.host_pub.to_str().unwrap(),
        "--remote-dir", remote.to_str().unwrap(), "--days", days,
    ])
    .ok();
    // Something on the host that only this trial put there: deploy records it in its manifest,
    // and only what is recorded there is removed (a directory the tool did not make stays).
    cli.run(&["deploy", trial, "--only", "upload-env"]).ok();
    std::fs::rename(remote.join("deploy/.env"), remote.join("deploy/marker")).unwrap();
    let remote = remote.join("deploy");
    assert!(remote.join("marker").exists());
    remote
}

#[test]
fn teardown_expired_wipes_and_forgets_expired_ssh_trials_and_keeps_live_ones() {
    let sshd = Sshd::start();
    let cli = Cli::new(None); // no HCLOUD_TOKEN: only the ssh trials are in scope
    let short = register(&cli, &sshd, "short-trial", "1");
    let long = register(&cli, &sshd, "long-trial", "30");
    let at = rfc3339(now_unix() + 5 * 86_400);

    let dry = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at, "--dry-run"]).ok();
    let j = dry.json();
    assert_eq!(j["expired"], serde_json::json!(["short-trial"]), "{j}");
    assert!(j["kept"].to_string().contains("long-trial"), "{j}");
    assert!(j["plan_text"].as_str().unwrap().contains("short-trial"), "{j}");
    assert!(short.join("marker").exists(), "a dry run deletes nothing");
    assert!(cli.trial_dir("short-trial").exists());

    let run = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]).ok();
    let j = run.json();
    assert_eq!(j["destroyed"], serde_json::json!(["short-trial"]), "{j}");
    assert!(!short.exists(), "the expired trial's directory is removed from the host");
    assert!(!cli.trial_dir("short-trial").exists(), "the expired trial's record is forgotten");
    assert!(long.join("marker").exists(), "the live trial is untouched on the host");
    assert!(cli.trial_dir("long-trial").exists(), "the live trial's record is kept");
}
