//! Running a trial, through the real binary: prices from the Hetzner fake (behind Prism) in
//! `status` and `create --dry-run`, Basic Auth users over a real sshd, the history with no
//! secret in it, doctor's findings and exit code, init and completions.

mod common;
mod sshd_fixture;

use std::path::PathBuf;

use common::{now_unix, rfc3339, Cli, Fake};
use sshd_fixture::Sshd;

/// cpx41 at the fake: 0.0403 EUR/h net, plus the primary IPv4's 0.0008 EUR/h.
const CPX41_WITH_IPV4: f64 = 0.0411;

fn set_created(cli: &Cli, trial: &str, created: i64) {
    let p = cli.trial_dir(trial).join("trial.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let text: String = text
        .lines()
        .map(|l| if l.starts_with("created_unix = ") { format!("created_unix = {created}") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&p, text).unwrap();
}

#[test]
fn status_shows_the_hourly_price_and_the_exact_cost_since_creation() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    cli.create("priced", &["--location", "nbg1", "--days", "3"]).ok();
    // Created 5 h 10 min ago: six started hours are billed.
    set_created(&cli, "priced", now_unix() - (5 * 3600 + 600));
    let r = cli.run(&["--output", "json", "status", "priced"]).ok();
    let c = &r.json()["trials"][0]["cost"];
    assert_eq!(c["currency"], "EUR");
    assert!((c["hourly"].as_f64().unwrap() - CPX41_WITH_IPV4).abs() < 1e-9, "{c}");
    assert_eq!(c["hours"], 6);
    assert_eq!(c["amount"].as_f64().unwrap(), 0.2466, "{c}");
    assert_eq!(c["includes"][1], "primary IPv4");
    let human = cli.run(&["status"]).ok().stdout;
    assert!(human.contains("0.0411 EUR/h") && human.contains("0.25 EUR (6 h)"), "{human}");
    fake.assert_no_violations();
}

#[test]
fn create_dry_run_prices_the_hour_and_the_whole_trial() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let expires = rfc3339(now_unix() + 2 * 86400);
    let r = cli.create("plan-cost", &["--location", "fsn1", "--expires", &expires, "--dry-run"]).ok();
    let j = r.json();
    assert_eq!(j["cost"]["hours"], 48);
    assert_eq!(j["cost"]["amount"].as_f64().unwrap(), 1.9728, "{}", j["cost"]);
    assert!(j["plan_text"].as_str().unwrap().contains("Price: 0.0411 EUR/h; the whole trial (48 h to its expiry): 1.97 EUR"));
    fake.assert_no_violations();
}

#[test]
fn a_host_without_a_price_says_so() {
    let sshd = Sshd::start();
    let cli = Cli::new(None);
    register(&cli, &sshd, "no-price");
    let j = cli.run(&["--output", "json", "status", "no-price"]).ok().json();
    assert!(j["trials"][0]["cost"].is_null());
    assert!(cli.run(&["status"]).ok().stdout.contains("no price"));
}

fn register(cli: &Cli, sshd: &Sshd, trial: &str) -> PathBuf {
    let remote = sshd.dir.path().join(format!("remote-home/{trial}"));
    let port = sshd.port.to_string();
    cli.run(&[
        "create", trial, "--provider", "ssh", "--host", "127.0.0.1", "--port", &port, "--user", &sshd.user,
        "--identity", sshd.client_key.to_str().unwrap(), "--host-key", sshd.host_pub.to_str().unwrap(),
        "--remote-dir", remote.to_str().unwrap(),
    ])
    .ok();
    remote
}

fn users_toml_password(cli: &Cli, trial: &str, user: &str) -> String {
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(cli.trial_dir(trial).join("users.toml")).unwrap()).unwrap();
    v["user"].as_array().unwrap().iter().find(|u| u["name"].as_str() == Some(user)).unwrap()["password"].as_str().unwrap().to_string()
}

#[test]
fn auth_keeps_passwords_here_sends_hashes_only_and_every_change_is_in_the_history() {
    let sshd = Sshd::start();
    let cli = Cli::new(None);
    let remote = register(&cli, &sshd, "auth-t");
    // Before any deploy the set waits here.
    let r = cli.run(&["auth", "add", "auth-t", "ann"]).ok();
    assert!(r.stdout.contains("not deployed yet"), "{}", r.stdout);
    assert!(!remote.join("deploy/auth/users.caddy").exists());
    // From then on every change goes to the host: the dry run lists the steps that run.
    let dry = cli.run(&["--output", "json", "auth", "add", "auth-t", "bob", "--dry-run"]).ok().json();
    let steps: Vec<&str> = dry["plan"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["save_local", "put_users", "reload"]);
    let r = cli.run(&["--output", "json", "auth", "add", "auth-t", "bob", "--show"]).ok();
    let j = r.json();
    let bob = j["password"].as_str().unwrap().to_string();
    assert!(bob.len() >= 24 && !bob.chars().any(|c| "0O1lI".contains(c)), "{bob}");
    assert!(r.stderr.contains("no stack deployed yet"), "{}", r.stderr);
    let file = remote.join("deploy/auth/users.caddy");
    assert_eq!(common::mode(&file), 0o600);
    let caddy = std::fs::read_to_string(&file).unwrap();
    let ann = users_toml_password(&cli, "auth-t", "ann");
    assert!(caddy.contains("\nann $2") && caddy.contains("\nbob $2"), "{caddy}");
    assert!(!caddy.contains(&bob) && !caddy.contains(&ann));
    assert_eq!(common::mode(&cli.trial_dir("auth-t").join("users.toml")), 0o600);

    // Passwords are shown only when asked.
    let list = cli.run(&["auth", "list", "auth-t"]).ok().stdout;
    assert!(list.contains("ann") && list.contains("bob") && !list.contains(&bob), "{list}");
    assert!(cli.run(&["auth", "list", "auth-t", "--show"]).ok().stdout.contains(&bob));

    cli.run(&["auth", "rotate", "auth-t", "bob"]).ok();
    let bob2 = users_toml_password(&cli, "auth-t", "bob");
    assert_ne!(bob, bob2);
    cli.run(&["auth", "revoke", "auth-t", "ann"]).ok();
    // basic-auth.toml follows the first user, which smoke logs in with.
    assert!(std::fs::read_to_string(cli.trial_dir("auth-t").join("basic-auth.toml")).unwrap().contains("user = \"bob\""));
    let r = cli.run(&["auth", "revoke", "auth-t", "bob"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--all"));
    cli.run(&["auth", "revoke", "auth-t", "--all"]).ok();
    let caddy = std::fs::read_to_string(&file).unwrap();
    assert!(caddy.contains("\nlocked $2") && !caddy.contains("bob"), "{caddy}");
    let r = cli.run(&["deploy", "auth-t", "--only", "check-env"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("locked"), "{}", r.stderr);

    // History: one line per change, here and on the host, with no password in either.
    let h = cli.run(&["--output", "json", "history", "auth-t"]).ok().json();
    let actions: Vec<&str> = h["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "auth-add", "auth-add", "auth-rotate", "auth-revoke", "auth-revoke"]);
    let local = std::fs::read_to_string(cli.state_dir().join("history/auth-t.jsonl")).unwrap();
    assert_eq!(common::mode(&cli.state_dir().join("history/auth-t.jsonl")), 0o600);
    let on_host = std::fs::read_to_string(remote.join("deploy/history.jsonl")).unwrap();
    assert_eq!(on_host, local, "the host has every line, create included");
    for secret in [&ann, &bob, &bob2] {
        assert!(!local.contains(secret.as_str()) && !on_host.contains(secret.as_str()));
    }
    let e = &h["entries"][1];
    assert_eq!(e["users"][0], "ann");
    assert!(e["operator"].as_str().unwrap().contains('@'));
    assert_eq!(e["result"], "ok");
}

#[test]
fn doctor_names_each_missing_piece_on_its_own_line_and_exits_1() {
    let cli = Cli::new(None).env("PATH", "/nonexistent").without_env("SSH_AUTH_SOCK").env("HOME", "/nonexistent");
    std::fs::create_dir_all(cli.state_dir()).unwrap();
    std::fs::set_permissions(cli.state_dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = cli.run(&["doctor", "--provider", "hetzner", "--ship-images"]);
    assert_eq!(r.code, 1, "{}", r.all_output());
    let missing: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("MISSING")).collect();
    for what in ["hetzner credentials", "HCLOUD_TOKEN", "ssh keys", "docker", "state dir"] {
        assert_eq!(missing.iter().filter(|l| l.contains(what)).count().min(1), 1, "{what} not reported:\n{}", r.stdout);
    }
    assert_eq!(missing.len(), 4, "{}", r.stdout);
    let j = cli.run(&["--output", "json", "doctor", "--provider", "hetzner"]).json();
    assert_eq!(j["ok"], false);
}

#[test]
fn doctor_with_working_credentials_checks_the_clock_against_the_api() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let j = cli.run(&["--output", "json", "doctor"]).json();
    let checks = j["checks"].as_array().unwrap();
    let by = |name: &str| checks.iter().find(|c| c["check"] == name).unwrap_or_else(|| panic!("{name}: {j}"));
    assert_eq!(by("hetzner credentials")["ok"], true);
    assert_eq!(by("clock")["ok"], true);
    assert!(by("clock")["detail"].as_str().unwrap().contains("s against the hetzner API"), "{j}");
}

#[test]
fn init_writes_a_config_the_tool_reads_and_refuses_to_overwrite() {
    let cli = Cli::new(None);
    let dir = cli.cwd.path().join("client-acme");
    cli.run(&["init", dir.to_str().unwrap()]).ok();
    assert_eq!(common::mode(&dir.join("client.env")), 0o600);
    let cfg = dir.join("munero.toml");
    cli.run(&["--config", cfg.to_str().unwrap(), "status"]).ok();
    let r = cli.run(&["init", dir.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    cli.run(&["init", dir.to_str().unwrap(), "--force"]).ok();
}

#[test]
fn completions_cover_the_new_commands_in_each_shell() {
    let cli = Cli::new(None);
    for sh in ["bash", "zsh", "fish"] {
        let out = cli.run(&["completions", sh]).ok().stdout;
        for cmd in ["auth", "onboard", "history", "doctor", "rotate"] {
            assert!(out.contains(cmd), "{sh} lacks {cmd}");
        }
    }
}
