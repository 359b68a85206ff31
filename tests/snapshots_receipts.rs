//! Snapshots, restore and the destroy receipt with its orphan sweep, against the Hetzner fake
//! behind Prism: a snapshot is labelled like the trial and listed by status; restore makes the
//! server again from it with the pinned host key; destroy deletes it (or keeps it with
//! --keep-snapshots) and writes a receipt listing exactly the resources that existed, each with
//! the provider's fresh 404, plus the orphans it found and removed.

mod common;

use common::{mode, Cli, Fake};
use serde_json::{json, Value};

fn snapshots(fake: &Fake) -> Vec<Value> {
    fake.state()["images"].as_array().cloned().unwrap_or_default()
}

#[test]
fn snapshot_restore_and_destroy_with_a_receipt_that_finds_and_removes_orphans() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let made = cli.create("snap-one", &["--days", "3"]).ok().json();
    let expires = made["expires_unix"].as_i64().unwrap().to_string();
    let server_id = made["resources"]["server_id"].as_str().unwrap().to_string();

    let dry = cli.run(&["--output", "json", "snapshot", "snap-one", "--name", "before onboarding", "--dry-run"]).ok().json();
    assert_eq!(dry["plan"][0]["step"], "take");
    assert!(snapshots(&fake).is_empty(), "a dry run takes nothing");

    let snap = cli.run(&["--output", "json", "snapshot", "snap-one", "--name", "before onboarding"]).ok().json();
    let snap_id = snap["snapshot"]["id"].as_str().unwrap().to_string();
    let images = snapshots(&fake);
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!((img["type"].as_str(), img["description"].as_str(), img["status"].as_str()), (Some("snapshot"), Some("before onboarding"), Some("available")));
    assert_eq!(img["created_from"]["id"].to_string(), server_id);
    assert_eq!(img["labels"]["munero-managed"], "true");
    assert_eq!(img["labels"]["munero-trial"], "snap-one");
    assert_eq!(img["labels"]["munero-expires"].as_str(), Some(expires.as_str()));

    let status = cli.run(&["--output", "json", "status", "snap-one"]).ok().json();
    let listed = &status["trials"][0]["snapshots"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{status}");
    assert_eq!(listed[0]["id"].as_str(), Some(snap_id.as_str()));
    assert_eq!(listed[0]["name"], "before onboarding");
    let human = cli.run(&["status"]).ok();
    assert!(human.stdout.contains("snapshot \"before onboarding\""), "{}", human.stdout);

    // The server still exists: restore wants --replace.
    let r = cli.run(&["restore", "snap-one"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--replace"), "{}", r.stderr);
    let r = cli.run(&["restore", "snap-one", "--replace"]);
    assert_eq!(r.code, 2, "without a terminal --replace needs --yes: {}", r.stderr);
    assert_eq!(fake.servers().len(), 1);

    let restored = cli.run(&["--output", "json", "restore", "snap-one", "--replace", "--yes"]).ok().json();
    let servers = fake.servers();
    assert_eq!(servers.len(), 1);
    let s = &servers[0];
    assert_ne!(s["id"].to_string(), server_id, "a new server");
    assert_eq!(s["image"]["id"].to_string(), snap_id, "made from the snapshot");
    assert_eq!(s["labels"]["munero-trial"], "snap-one");
    assert_eq!(s["public_net"]["firewalls"].as_array().map(Vec::len), Some(1), "behind the trial's firewall: {s}");
    let host_pub = std::fs::read_to_string(cli.trial_dir("snap-one").join("ssh_host_ed25519_key.pub")).unwrap();
    let ud = s["user_data"].as_str().unwrap();
    assert!(ud.contains(host_pub.trim()) && ud.contains("ed25519_private"), "the pinned host key goes back: {ud}");
    assert_eq!(restored["server_id"].as_str(), Some(s["id"].to_string().as_str()));
    let record = std::fs::read_to_string(cli.trial_dir("snap-one").join("trial.toml")).unwrap();
    assert!(record.contains(&format!("server_id = \"{}\"", s["id"])), "{record}");

    // An orphan left on purpose: a firewall with the trial's labels on no server; and a volume.
    let labels = json!({"munero-managed": "true", "munero-trial": "snap-one", "munero-expires": expires});
    let seeded = fake.seed(json!({
        "firewalls": [{"name": "left-over", "labels": labels, "rules": []}],
        "volumes": [{"name": "left-vol", "labels": labels}],
        "ssh_keys": [{"name": "decoy", "labels": {"munero-trial": "snap-one"}}],
    }));
    let orphan_fw = seeded["firewalls"][0]["id"].to_string();

    let out = cli.run(&["--output", "json", "destroy", "snap-one", "--yes"]).ok().json();
    let rec = &out["receipt"];
    assert_eq!(rec["complete"], true, "{rec}");
    let receipt = &rec["receipt"];
    let mut kinds: Vec<String> = receipt["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{}:{}", g["kind"].as_str().unwrap(), g["orphan"]))
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["firewall:false", "firewall:true", "server:false", "snapshot:false", "ssh_key:false", "volume:true"], "{receipt}");
    for g in receipt["resources"].as_array().unwrap() {
        assert_eq!(g["lookup"]["gone"], true, "{g}");
        assert_eq!(g["lookup"]["answer"], "404 not_found", "{g}");
        assert!(g["lookup"]["request"].as_str().unwrap().starts_with("GET /"), "{g}");
        assert!(g["checked_at"].as_str().is_some(), "{g}");
    }
    assert!(receipt["resources"].as_array().unwrap().iter().any(|g| g["id"].as_str() == Some(orphan_fw.as_str()) && g["orphan"] == true));
    assert!(snapshots(&fake).is_empty(), "destroy deletes the trial's snapshots");
    assert!(fake.firewalls().is_empty() && fake.state()["volumes"].as_array().unwrap().is_empty());
    assert_eq!(fake.names("ssh_keys"), ["decoy"], "an unmanaged key is never touched");

    // The receipt outlives the record, 0600, and `receipt` prints it.
    let text_file = rec["text_file"].as_str().unwrap();
    assert_eq!(mode(std::path::Path::new(text_file)), 0o600);
    let shown = cli.run(&["receipt", "snap-one"]).ok();
    assert!(shown.stdout.contains("munero destroy receipt") && shown.stdout.contains("result:     COMPLETE"), "{}", shown.stdout);
    assert!(shown.stdout.contains(&format!("GET /firewalls/{orphan_fw} -> 404 not_found")), "{}", shown.stdout);
    let missing = cli.run(&["receipt", "no-such-trial"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    fake.assert_no_violations();
}

#[test]
fn keep_snapshots_keeps_them_through_destroy_and_teardown_removes_them_later() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    cli.create("snap-keep", &["--days", "1"]).ok();
    cli.run(&["snapshot", "snap-keep"]).ok();
    assert_eq!(snapshots(&fake).len(), 1);

    let dry = cli.run(&["destroy", "snap-keep", "--yes", "--keep-snapshots", "--dry-run"]).ok();
    assert!(!dry.stdout.contains("delete hetzner snapshot"), "no snapshot deletion planned: {}", dry.stdout);
    assert!(dry.stdout.contains("(snapshots are kept)"), "{}", dry.stdout);
    let out = cli.run(&["--output", "json", "destroy", "snap-keep", "--yes", "--keep-snapshots"]).ok().json();
    assert_eq!(snapshots(&fake).len(), 1, "kept");
    assert!(fake.servers().is_empty() && fake.firewalls().is_empty() && fake.ssh_keys().is_empty());
    let kept = out["receipt"]["receipt"]["sweep"]["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "the receipt says the snapshot was kept: {out}");
    let status = cli.run(&["--output", "json", "status"]).ok().json();
    assert_eq!(status["trials"][0]["state"], "snapshots only", "{status}");

    // Past its expiry: teardown --keep-snapshots leaves it, plain teardown removes it.
    let later = common::rfc3339(common::now_unix() + 3 * 86_400);
    cli.run(&["teardown", "--expired", "--at", &later, "--keep-snapshots"]).ok();
    assert_eq!(snapshots(&fake).len(), 1);
    let td = cli.run(&["--output", "json", "teardown", "--expired", "--at", &later]).ok().json();
    assert!(snapshots(&fake).is_empty(), "teardown deletes an expired trial's snapshots");
    // The scheduled teardown leaves a receipt too, each deletion confirmed by a fresh lookup.
    let r = &td["receipts"][0];
    assert_eq!((r["trial"].as_str(), r["complete"].as_bool()), (Some("snap-keep"), Some(true)), "{td}");
    assert_eq!(r["receipt"]["action"], "teardown");
    let gone = r["receipt"]["resources"].as_array().unwrap();
    assert_eq!(gone.len(), 1, "{r}");
    assert_eq!((gone[0]["kind"].as_str(), gone[0]["lookup"]["answer"].as_str()), (Some("snapshot"), Some("404 not_found")));
    let all = cli.run(&["--output", "json", "receipt", "snap-keep", "--all"]).ok().json();
    let actions: Vec<&str> = all["receipts"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["destroy", "teardown"]);
    fake.assert_no_violations();
}

#[test]
fn hosts_without_provider_images_refuse_snapshot_and_restore() {
    let cli = Cli::new(None);
    let r = cli.run(&["snapshot", "no-such"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}
