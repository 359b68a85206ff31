//! The real binary against the Hetzner API fake, through Prism (contract check) when installed.

mod common;

use common::*;
use serde_json::{json, Value};

fn server_of<'a>(servers: &'a [Value], name: &str) -> &'a Value {
    servers.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no server {name} in {servers:?}"))
}

#[test]
fn create_status_destroy_roundtrip() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));

    let r = cli.create("acme-demo", &["--days", "7", "--domain", "acme.trials.example.com"]).ok();
    let doc = r.json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["resumed"], false);
    assert!(doc["ipv4"].as_str().unwrap().starts_with("203.0.113."));
    assert_eq!(doc["server_type"], "cpx41");

    // Exactly one server, labelled, with the firewall attached and user-data carrying the host key.
    let servers = fake.servers();
    assert_eq!(servers.len(), 1);
    let s = server_of(&servers, "acme-demo");
    assert_eq!(labels(s)["munero-managed"], "true");
    assert_eq!(labels(s)["munero-trial"], "acme-demo");
    let exp: i64 = labels(s)["munero-expires"].as_str().unwrap().parse().unwrap();
    assert!((exp - now_unix() - 7 * 86400).abs() < 120, "expiry label {exp}");
    assert_eq!(doc["resources"]["server_id"], s["id"].to_string());
    let ud = s["user_data"].as_str().unwrap();
    assert!(ud.starts_with("#cloud-config"));
    assert!(ud.contains("-----BEGIN OPENSSH PRIVATE KEY-----"), "host key injected into user-data");

    // Firewall: 80/443 from anywhere, 22 only from the operator, nothing else.
    let fws = fake.firewalls();
    assert_eq!(fws.len(), 1);
    let fw = &fws[0];
    assert_eq!(fw["name"], "munero-acme-demo");
    assert_eq!(labels(fw)["munero-trial"], "acme-demo");
    let mut rules: Vec<String> = fw["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {} {}", r["direction"].as_str().unwrap(), r["protocol"].as_str().unwrap(), r["port"].as_str().unwrap_or("-"), r["source_ips"]))
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        vec![
            "in tcp 22 [\"198.51.100.7/32\"]".to_string(),
            "in tcp 443 [\"0.0.0.0/0\",\"::/0\"]".to_string(),
            "in tcp 80 [\"0.0.0.0/0\",\"::/0\"]".to_string(),
        ]
    );
    let applied: Vec<Value> = fw["applied_to"].as_array().unwrap().clone();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0]["server"]["id"], s["id"]);

    // SSH key: registered with the labels; the local private key file is 0600, dir 0700.
    let keys = fake.ssh_keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(labels(&keys[0])["munero-managed"], "true");
    let dir = cli.trial_dir("acme-demo");
    for f in ["id_ed25519", "ssh_host_ed25519_key", "trial.toml", "id_ed25519.pub"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&dir), 0o700);
    let local_pub = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
    assert_eq!(keys[0]["public_key"].as_str().unwrap().trim(), local_pub.trim().trim_end_matches(" munero-acme-demo").trim().to_string() + " munero-acme-demo");

    // The host private key appears in no output.
    let host_key = std::fs::read_to_string(dir.join("ssh_host_ed25519_key")).unwrap();
    for line in host_key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!r.all_output().contains(line), "host private key leaked into create's output");
    }
    assert!(!r.all_output().contains("BEGIN OPENSSH PRIVATE KEY"));
    assert!(doc["user_data"].as_str().unwrap().contains("<redacted"));
    assert!(doc["ssh"]["host_key_fingerprint"].as_str().unwrap().starts_with("SHA256:"));

    // status: one row, running, with the address (and it repairs a stale local record).
    let record = dir.join("trial.toml");
    let stale = std::fs::read_to_string(&record).unwrap().replace(doc["ipv4"].as_str().unwrap(), "192.0.2.99");
    std::fs::write(&record, stale).unwrap();
    let st = cli.run(&["--output", "json", "status"]).ok().json();
    assert!(std::fs::read_to_string(&record).unwrap().contains(doc["ipv4"].as_str().unwrap()));
    assert_eq!(mode(&record), 0o600);
    let rows = st["trials"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["trial"], "acme-demo");
    assert_eq!(rows[0]["state"], "running");
    assert_eq!(rows[0]["ipv4"], doc["ipv4"]);
    assert_eq!(rows[0]["server_type"], "cpx41");
    let table = cli.run(&["list", "acme-demo"]).ok();
    assert!(table.stdout.contains("acme-demo") && table.stdout.contains("running") && table.stdout.contains("hetzner"));

    // destroy: everything gone at the provider and locally.
    let d = cli.run(&["--output", "json", "destroy", "acme-demo", "--yes"]).ok();
    assert_eq!(d.json()["ok"], true);
    assert!(fake.is_empty(), "left at the provider: {}", fake.state());
    assert!(!dir.exists(), "local secrets removed");
    for line in host_key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!d.all_output().contains(line));
    }
    fake.assert_no_violations();
}

#[test]
fn create_twice_resumes_and_never_makes_a_second_server() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let first = cli.create("resume-me", &["--location", "nbg1"]).ok().json();
    // Flags not given again come from the record (location, ssh-from).
    let second_run = cli.run(&["-vv", "--output", "json", "create", "resume-me", "--provider", "hetzner"]).ok();
    // Even at -vv: no token, no private key in any output.
    assert!(!second_run.all_output().contains("test-token-not-secret"));
    assert!(!second_run.all_output().contains("PRIVATE KEY-----\n"));
    assert!(!second_run.all_output().contains("BEGIN OPENSSH PRIVATE KEY"));
    let second = second_run.json();
    assert_eq!(second["resumed"], true);
    assert_eq!(second["location"], "nbg1");
    assert_eq!(second["ssh_from"], json!(["198.51.100.7/32"]));
    assert_eq!(first["resources"], second["resources"]);
    assert_eq!(first["ssh"]["host_key_fingerprint"], second["ssh"]["host_key_fingerprint"]);
    assert_eq!(fake.servers().len(), 1);
    assert_eq!(fake.firewalls().len(), 1);
    assert_eq!(fake.ssh_keys().len(), 1);
    assert_eq!(fake.count("POST", "/v1/servers"), 1);
    assert_eq!(fake.count("POST", "/v1/ssh_keys"), 1);
    assert_eq!(fake.count("POST", "/v1/firewalls"), 1);
    fake.assert_no_violations();
}

#[test]
fn resume_after_a_half_made_trial_creates_only_what_is_missing() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    // The server create fails with an error the client cannot retry, and the clean-up is kept
    // from working, so the key and firewall stay (labelled). A second create then resumes.
    fake.fault(json!({"method": "POST", "path_regex": "^/v1/servers$", "status": 422, "code": "invalid_input",
                      "message": "simulated", "count": 1}));
    fake.fault(json!({"method": "DELETE", "path_regex": "^/v1/firewalls/", "status": 423, "count": 20}));
    let r = cli.create("half-made", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("could NOT delete") && r.stderr.contains("destroy half-made --yes"), "{}", r.stderr);
    assert_eq!(fake.servers().len(), 0);
    assert_eq!(fake.firewalls().len(), 1, "the firewall stays, labelled");
    assert!(cli.trial_dir("half-made").join("trial.toml").exists(), "the record stays for resume");
    let again = cli.create("half-made", &[]).ok().json();
    assert_eq!(fake.servers().len(), 1);
    assert_eq!(fake.firewalls().len(), 1);
    assert!(again["ipv4"].is_string());
    fake.assert_no_violations();
}

#[test]
fn rate_limit_429_then_success_waits_and_creates_once() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    fake.fault(json!({"method": "POST", "path_regex": "^/v1/servers$", "status": 429, "count": 1, "reset_in": 1}));
    fake.fault(json!({"method": "GET", "path_regex": "^/v1/actions$", "status": 429, "count": 2, "reset_in": 1}));
    let doc = cli.create("ratelimited", &[]).ok().json();
    assert_eq!(doc["ok"], true);
    assert_eq!(fake.servers().len(), 1);
    let posts: Vec<i64> = fake
        .requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/servers")
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(posts, vec![429, 201]);
    fake.assert_no_violations();
}

#[test]
fn service_unavailable_503_then_success_retries() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    // 503 before the API acted (nothing made) on each create, and on reads.
    fake.fault(json!({"method": "POST", "path_regex": "^/v1/servers$", "status": 503, "count": 1}));
    fake.fault(json!({"method": "POST", "path_regex": "^/v1/firewalls$", "status": 503, "count": 1}));
    fake.fault(json!({"method": "GET", "path_regex": "^/v1/servers/\\d+$", "status": 503, "count": 2}));
    let doc = cli.create("flaky-api", &[]).ok().json();
    assert_eq!(doc["ok"], true);
    assert_eq!(fake.servers().len(), 1);
    assert_eq!(fake.firewalls().len(), 1);
    fake.assert_no_violations();
}

#[test]
fn lost_answer_after_the_server_was_made_does_not_make_a_second_one() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    // The fake creates the server, then answers 503: the client must find it by label.
    fake.fault(json!({"method": "POST", "path_regex": "^/v1/servers$", "status": 503, "count": 1, "when": "after"}));
    fake.fault(json!({"method": "POST", "path_regex": "^/v1/ssh_keys$", "status": 502, "count": 1, "when": "after"}));
    let doc = cli.create("lost-answer", &[]).ok().json();
    assert_eq!(doc["ok"], true);
    assert_eq!(fake.servers().len(), 1, "{}", fake.state());
    assert_eq!(fake.ssh_keys().len(), 1);
    fake.assert_no_violations();
}

#[test]
fn failure_half_way_deletes_what_this_run_created_and_leaves_no_orphan() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    fake.fault(json!({"kind": "action_error", "command": "create_server", "count": 1, "code": "server_error",
                      "message": "simulated host failure"}));
    let r = cli.create("doomed", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("simulated host failure"), "{}", r.stderr);
    assert!(r.stderr.contains("deleted what this run created"), "{}", r.stderr);
    assert!(fake.is_empty(), "orphans left: {}", fake.state());
    assert!(!cli.trial_dir("doomed").exists(), "no local record of a trial that does not exist");
    assert_eq!(r.json()["ok"], false);
    fake.assert_no_violations();
}

#[test]
fn server_error_that_never_ends_gives_up_bounded_and_cleans_up() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake)).env("MUNERO_HTTP_MAX_ATTEMPTS", "3");
    fake.fault(json!({"method": "POST", "path_regex": "^/v1/servers$", "status": 500, "count": 1000}));
    let r = cli.create("never-up", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("gave up after"), "{}", r.stderr);
    let posts = fake.count("POST", "/v1/servers");
    assert!((2..=5).contains(&posts), "bounded attempts, got {posts}");
    assert!(fake.is_empty(), "{}", fake.state());
}

#[test]
fn ssh_from_auto_uses_the_echo_service() {
    let fake = Fake::start();
    let echo = EchoServer::start("198.51.100.23\n");
    let cli = Cli::new(Some(&fake)).env("MUNERO_IP_ECHO_URL", &echo.url);
    cli.run(&["--output", "json", "create", "auto-ip", "--provider", "hetzner", "--ssh-from", "auto"]).ok();
    let fw = &fake.firewalls()[0];
    let ssh = fw["rules"].as_array().unwrap().iter().find(|r| r["port"] == "22").unwrap().clone();
    assert_eq!(ssh["source_ips"], json!(["198.51.100.23/32"]));
}

#[test]
fn destroy_needs_yes_without_a_terminal_and_spares_unlabelled_lookalikes() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    cli.create("keep-out", &[]).ok();
    // Decoys carrying the trial label but not the managed label.
    fake.seed(json!({
        "firewalls": [{"name": "decoy-fw", "labels": {"munero-trial": "keep-out"}, "rules": []}],
        "ssh_keys": [{"name": "decoy-key", "labels": {"munero-trial": "keep-out", "munero-managed": "false"}}],
        "servers": [{"name": "decoy-srv", "labels": {"munero-trial": "keep-out"}, "server_type": "cx22",
                      "image": "ubuntu-24.04", "location": "fsn1"}]
    }));
    let r = cli.run(&["destroy", "keep-out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(fake.servers().len(), 2, "nothing deleted without --yes");

    let plan = cli.run(&["--output", "json", "destroy", "keep-out", "--dry-run"]).ok().json();
    let steps = plan["plan"].as_array().unwrap();
    assert_eq!(steps.iter().filter(|s| s["step"] == "delete_resource").count(), 3);
    assert_eq!(fake.servers().len(), 2, "dry run deletes nothing");

    cli.run(&["destroy", "keep-out", "--yes"]).ok();
    assert_eq!(fake.names("servers"), vec!["decoy-srv"]);
    assert_eq!(fake.names("firewalls"), vec!["decoy-fw"]);
    assert_eq!(fake.names("ssh_keys"), vec!["decoy-key"]);
    fake.assert_no_violations();
}

#[test]
fn teardown_destroys_expired_trials_and_orphans_and_spares_live_and_unlabelled() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let soon = rfc3339(now_unix() + 3600);
    cli.create("old-trial", &["--expires", &soon]).ok();
    cli.create("live-trial", &["--days", "30"]).ok();
    let past = (now_unix() - 10).to_string();
    let far_past = "1000000000";
    fake.seed(json!({
        // Unlabelled or not-managed decoys: must survive whatever their names or expiry labels.
        "servers": [
            {"name": "customer-prod", "labels": {}, "server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1"},
            {"name": "old-trial-lookalike", "labels": {"munero-trial": "old-trial", "munero-expires": far_past},
             "server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1"}
        ],
        "firewalls": [
            {"name": "munero-decoy", "labels": {"munero-expires": far_past}, "rules": []},
            // An orphan of an expired trial whose server is already gone: managed, so removed.
            {"name": "munero-orphan", "labels": {"munero-managed": "true", "munero-trial": "orphan", "munero-expires": past}, "rules": []}
        ],
        "ssh_keys": [
            {"name": "munero-orphan", "labels": {"munero-managed": "true", "munero-trial": "orphan", "munero-expires": past}},
            {"name": "someone-else", "labels": {}}
        ]
    }));

    let at = rfc3339(now_unix() + 2 * 86400);
    let dry = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at, "--dry-run"]).ok().json();
    let mut expired: Vec<String> = dry["expired"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    expired.sort();
    assert_eq!(expired, vec!["old-trial", "orphan"]);
    assert_eq!(fake.servers().len(), 4, "dry run deletes nothing");

    let r = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]).ok();
    let doc = r.json();
    assert_eq!(doc["ok"], true);
    assert_eq!(fake.names("servers"), vec!["customer-prod", "live-trial", "old-trial-lookalike"]);
    assert_eq!(fake.names("firewalls"), vec!["munero-decoy", "munero-live-trial"]);
    assert_eq!(fake.names("ssh_keys"), vec!["munero-live-trial", "someone-else"]);
    assert!(!cli.trial_dir("old-trial").exists());
    assert!(cli.trial_dir("live-trial").exists());

    // Default --at is now: nothing further has expired.
    let again = cli.run(&["--output", "json", "teardown", "--expired"]).ok().json();
    assert_eq!(again["destroyed"], json!([]));
    fake.assert_no_violations();
}

#[test]
fn teardown_keeps_going_when_one_trial_fails_and_exits_1() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake)).env("MUNERO_HTTP_MAX_ATTEMPTS", "2");
    let soon = rfc3339(now_unix() + 3600);
    cli.create("stuck-trial", &["--expires", &soon]).ok();
    cli.create("fine-trial", &["--expires", &soon]).ok();
    let stuck_id = server_of(&fake.servers(), "stuck-trial")["id"].clone();
    fake.fault(json!({"method": "DELETE", "path_regex": format!("^/v1/servers/{stuck_id}$"), "status": 500, "count": 1000}));
    let at = rfc3339(now_unix() + 7200);
    let r = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["destroyed"], json!(["fine-trial"]));
    assert_eq!(doc["failed"][0]["trial"], "stuck-trial");
    assert_eq!(fake.names("servers"), vec!["stuck-trial"]);
}

#[test]
fn unauthorized_token_fails_with_exit_1_and_says_so() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake)).env("HCLOUD_TOKEN", "invalid");
    let r = cli.create("no-auth", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("authentication failed"), "{}", r.stderr);
    assert!(!r.all_output().contains("test-token-not-secret"));
    assert!(fake.is_empty());
}

#[test]
fn a_slow_answer_times_out_and_is_retried() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake)).env("MUNERO_HTTP_TIMEOUT_S", "1");
    fake.fault(json!({"method": "GET", "path_regex": "^/v1/server_types$", "delay": 3, "count": 1}));
    let doc = cli.create("slow-api", &[]).ok().json();
    assert_eq!(doc["ok"], true);
    assert!(fake.count("GET", "/v1/server_types") >= 2, "the slow request was sent again");
    assert_eq!(fake.servers().len(), 1);
}

#[test]
fn resume_keeps_the_first_expiry() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let first = cli.create("keep-expiry", &["--days", "3"]).ok().json();
    let second = cli.create("keep-expiry", &["--days", "30"]).ok();
    assert!(second.stderr.contains("keeping its expiry"), "{}", second.stderr);
    assert_eq!(second.json()["expires_unix"], first["expires_unix"]);
    let label = labels(&fake.servers()[0])["munero-expires"].clone();
    assert_eq!(label.as_str().unwrap(), first["expires_unix"].to_string());
}

#[test]
fn teardown_walks_every_page_of_the_listing() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let past = (now_unix() - 60).to_string();
    let servers: Vec<Value> = (0..60)
        .map(|i| json!({"name": format!("paged-{i:02}"), "server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1",
                        "labels": {"munero-managed": "true", "munero-trial": format!("paged-{i:02}"), "munero-expires": past}}))
        .collect();
    fake.seed(json!({"servers": servers}));
    let doc = cli.run(&["--output", "json", "teardown", "--expired", "--dry-run"]).ok().json();
    assert_eq!(doc["expired"].as_array().unwrap().len(), 60);
    let pages: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"] == "/v1/servers")
        .map(|r| r["query"]["page"].clone())
        .collect();
    assert_eq!(pages, vec![json!(["1"]), json!(["2"])]);
    fake.assert_no_violations();
}

/// The plan a dry run prints, without the per-run key fingerprints.
fn comparable_plan(doc: &Value) -> Vec<Value> {
    doc["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.as_object_mut().unwrap().remove("fingerprint");
            s
        })
        .collect()
}

#[test]
fn dry_run_plan_is_the_plan_that_runs() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    // A fixed expiry: with --days the two runs would compute it from two different "now"s.
    let expires = rfc3339(now_unix() + 5 * 86400);
    let dry = cli.create("same-plan", &["--location", "hel1", "--expires", &expires, "--dry-run"]).ok();
    assert!(fake.mutating_requests().is_empty(), "a dry run changes nothing");
    let real = cli.create("same-plan", &["--location", "hel1", "--expires", &expires]).ok();
    let (d, r) = (dry.json(), real.json());
    assert_eq!(comparable_plan(&d), comparable_plan(&r));
    // The executor announced exactly those steps, in that order.
    let announced: Vec<&str> = real.stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(announced.len(), r["plan"].as_array().unwrap().len());
    let text: Vec<String> = d["plan_text"].as_str().unwrap().lines().filter(|l| !l.starts_with("     ")).map(|l| l.trim().to_string()).collect();
    for (a, t) in announced.iter().zip(text.iter()) {
        let (_, a_rest) = a.split_once("] ").unwrap();
        let (_, t_rest) = t.split_once(". ").unwrap();
        if !t_rest.starts_with("ensure ssh key") {
            assert_eq!(a_rest, t_rest);
        }
    }
}

#[test]
fn teardown_forgets_local_records_of_expired_trials_already_gone_at_the_provider() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let soon = rfc3339(now_unix() + 3600);
    cli.create("gone-already", &["--expires", &soon]).ok();
    // Someone removed everything by hand at the provider.
    let control = reqwest::blocking::Client::new();
    control.post(format!("{}/__fake/reset", fake.control)).send().unwrap();
    assert!(cli.trial_dir("gone-already").exists());
    let at = rfc3339(now_unix() + 7200);
    cli.run(&["teardown", "--expired", "--at", &at]).ok();
    assert!(!cli.trial_dir("gone-already").exists());
}

#[test]
fn a_rate_limit_that_never_lifts_gives_up_after_bounded_attempts() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake)).env("MUNERO_HTTP_MAX_ATTEMPTS", "3").env("MUNERO_HTTP_MAX_RATE_WAIT_S", "1");
    fake.fault(json!({"path_regex": "^/v1/", "status": 429, "count": 100000, "reset_in": 3600}));
    let r = cli.create("throttled", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("gave up after 3 attempts") && r.stderr.contains("429"), "{}", r.stderr);
    assert_eq!(fake.requests().len(), 3, "exactly max-attempts requests, then stop");
    assert!(fake.is_empty());
}

#[test]
fn destroy_on_a_terminal_asks_for_the_trial_name() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    cli.create("ask-first", &[]).ok();
    // `script` gives the command a pseudo-terminal; the answer comes through it.
    let wrong = cli.run_on_tty(&["destroy", "ask-first"], "no-thanks\n");
    assert_eq!(wrong.code, 2, "{}", wrong.stdout);
    assert!(wrong.stdout.contains("not confirmed"), "{}", wrong.stdout);
    assert_eq!(fake.servers().len(), 1, "nothing deleted");
    let right = cli.run_on_tty(&["destroy", "ask-first"], "ask-first\n");
    assert_eq!(right.code, 0, "{}", right.stdout);
    assert!(fake.is_empty(), "{}", fake.state());
}
