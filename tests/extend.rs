//! `extend` against the Hetzner fake behind Prism: the dry run changes nothing; a real run moves
//! `munero-expires` on every labelled resource first, and when the VM cannot then be reached the
//! error says the extend is half done and the record keeps its old expiry; a past date is refused.
//! (The VM's own timer moving is checked on a real VM by the vm e2e suite.)

mod common;

use std::net::TcpListener;

use common::{now_unix, rfc3339, Cli, Fake};
use serde_json::Value;

fn expiry_labels(fake: &Fake, trial: &str) -> Vec<String> {
    let s = fake.state();
    let mut out = Vec::new();
    for kind in ["servers", "firewalls", "ssh_keys"] {
        for r in s[kind].as_array().unwrap() {
            if r["labels"]["munero-trial"] == trial {
                out.push(r["labels"]["munero-expires"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

#[test]
fn extend_moves_the_labels_first_and_a_vm_out_of_reach_leaves_a_half_done_extend_said_plainly() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let made: Value = cli.create("ext-one", &["--days", "3"]).ok().json();
    let old = made["expires_unix"].as_i64().unwrap();
    assert_eq!(expiry_labels(&fake, "ext-one"), vec![old.to_string(); 3]);

    let dry = cli.run(&["--output", "json", "extend", "ext-one", "--days", "2", "--dry-run"]).ok().json();
    let steps: Vec<&str> = dry["plan"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["relabel", "on_host", "record"]);
    assert!(dry["plan_text"].as_str().unwrap().contains(&format!("munero-expires={}", old + 2 * 86_400)));
    assert_eq!(expiry_labels(&fake, "ext-one"), vec![old.to_string(); 3], "a dry run changes nothing");

    // The VM answers on no port here: the second half fails after the labels moved.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rec = cli.trial_dir("ext-one").join("trial.toml");
    let mut t: toml::Table = toml::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    t.insert("ipv4".into(), "127.0.0.1".into());
    t.insert("ssh_port".into(), toml::Value::Integer(closed.into()));
    std::fs::write(&rec, toml::to_string(&t).unwrap()).unwrap();
    let r = cli.run(&["extend", "ext-one", "--days", "2"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("half done") && r.stderr.contains("already done: set munero-expires"), "{}", r.stderr);
    assert_eq!(expiry_labels(&fake, "ext-one"), vec![(old + 2 * 86_400).to_string(); 3]);
    let kept: toml::Table = toml::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    assert_eq!(kept["expires_unix"].as_integer(), Some(old), "the record moves last");

    let r = cli.run(&["extend", "ext-one", "--until", "2020-01-01T00:00:00Z"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("in the past"), "{}", r.stderr);
    let r = cli.run(&["extend", "ext-one", "--until", &rfc3339(now_unix() + 200 * 86_400)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    fake.assert_no_violations();
}
