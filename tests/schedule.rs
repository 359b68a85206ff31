//! `schedule install|remove|status`: systemd units that `systemd-analyze verify` accepts, naming
//! a 0600 env file that holds the credentials (never the units); a crontab line where systemd
//! does not run; installing twice replaces, removing leaves nothing (and keeps others' lines);
//! status shows the last teardown run from the log teardown appends.

mod common;

use std::process::{Command, Stdio};

use common::{mode, Cli, Fake};

fn crontab() -> String {
    let o = Command::new("crontab").arg("-l").stderr(Stdio::null()).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn set_crontab(text: &str) {
    use std::io::Write;
    let mut c = Command::new("crontab").arg("-").stdin(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success());
}

#[test]
fn systemd_units_verify_name_a_secret_env_file_and_install_twice_then_remove_leaves_nothing() {
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("config");
    let cli = Cli::new(None)
        .env("HOME", home.path().to_str().unwrap())
        .env("XDG_CONFIG_HOME", xdg.to_str().unwrap())
        .env("HCLOUD_TOKEN", "secret-token-value")
        .env("MUNERO_WEBHOOK_URL", "https://hooks.example.net/secret-hook");
    let args = ["--output", "json", "schedule", "install", "--with", "systemd", "--user", "--every", "30m"];

    let dry = cli.run(&[&args[..], &["--dry-run"]].concat()).ok();
    assert!(!xdg.join("systemd").exists(), "a dry run writes nothing");
    assert!(dry.json()["files"][0]["content"].as_str().unwrap().contains("EnvironmentFile="));

    let first = cli.run(&args).ok();
    let doc = first.json();
    assert_eq!(doc["env_keys"], serde_json::json!(["HCLOUD_TOKEN", "MUNERO_WEBHOOK_URL"]));
    assert!(!first.stdout.contains("secret-token-value") && !first.stderr.contains("secret-token-value"));
    let units = xdg.join("systemd/user");
    let (service, timer) = (units.join("munero-teardown.service"), units.join("munero-teardown.timer"));
    let svc = std::fs::read_to_string(&service).unwrap();
    assert!(svc.contains("teardown --expired") && svc.contains("--warn-before 24h") && !svc.contains("secret-token-value"), "{svc}");
    assert!(std::fs::read_to_string(&timer).unwrap().contains("OnCalendar=*-*-* *:00/30:00"));
    let env_file = xdg.join("munero-infra/schedule.env");
    assert_eq!(mode(&env_file) & 0o777, 0o600);
    assert!(std::fs::read_to_string(&env_file).unwrap().contains("HCLOUD_TOKEN='secret-token-value'"));

    let out = Command::new("systemd-analyze").arg("verify").arg(&service).arg(&timer).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(!said.contains("munero-teardown"), "systemd-analyze warned about our units: {said}");

    // Again: the same files, nothing added.
    cli.run(&args).ok();
    assert_eq!(std::fs::read_dir(&units).unwrap().count(), 2);

    let removed = cli.run(&["--output", "json", "schedule", "remove", "--with", "systemd", "--user"]).ok().json();
    assert_eq!(removed["removed"].as_array().unwrap().len(), 3, "{removed}");
    assert!(!service.exists() && !timer.exists() && !env_file.exists());
    let again = cli.run(&["schedule", "remove", "--with", "systemd", "--user"]).ok();
    assert!(again.stdout.contains("Nothing was installed"), "{}", again.stdout);
}

#[test]
fn without_systemd_a_crontab_line_replaces_ours_keeps_others_and_status_reads_the_last_run() {
    let before = crontab();
    set_crontab("# someone else's job\n17 3 * * * /usr/bin/true\n");
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    for _ in 0..2 {
        cli.run(&["schedule", "install", "--with", "cron", "--every", "1h"]).ok();
    }
    let table = crontab();
    let ours: Vec<&str> = table.lines().filter(|l| l.contains("# munero-infra scheduled teardown")).collect();
    assert_eq!(ours.len(), 1, "{table}");
    let fields: Vec<&str> = ours[0].split_whitespace().take(5).collect();
    assert_eq!(fields, ["0", "*", "*", "*", "*"]);
    assert!(ours[0].contains("teardown' '--expired'") && !ours[0].contains("test-token"), "{}", ours[0]);
    assert!(table.contains("17 3 * * * /usr/bin/true"));

    let st = cli.run(&["--output", "json", "schedule", "status", "--with", "cron"]).ok().json();
    assert_eq!(st["installed"], "cron");
    assert_eq!(st["last_run"], serde_json::Value::Null);
    // A teardown run (nothing to do) appends its line; status shows it.
    cli.run(&["teardown", "--expired"]).ok();
    let st = cli.run(&["--output", "json", "schedule", "status", "--with", "cron"]).ok().json();
    assert_eq!(st["last_run"]["ok"], true, "{st}");

    cli.run(&["schedule", "remove", "--with", "cron"]).ok();
    let table = crontab();
    assert!(!table.contains("munero-infra") && table.contains("/usr/bin/true"), "{table}");
    set_crontab(&before);
}
