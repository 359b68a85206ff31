//! The VM's own kill path, as cloud-init installs it in every variant: a systemd timer at the
//! expiry plus 24 hours whose script, run here with the clock set past that instant, removes the
//! stack's client_data and app_state volumes (real Docker volumes) and the uploaded copy, and
//! writes a receipt; before that instant it removes nothing.

use std::path::Path;
use std::process::Command;

use munero_infra::cloudinit::{render, UserDataInput};

fn input(gpu: bool) -> UserDataInput {
    UserDataInput {
        trial: "acme".into(),
        provider: "hetzner".into(),
        size: if gpu { "gpu" } else { "cpu" }.into(),
        gpu,
        docker_source: "upstream".into(),
        expires_unix: 1_800_000_000,
        expires_rfc3339: "2027-01-15T08:00:00Z".into(),
        expires_systemd: "2027-01-15 08:00:00 UTC".into(),
        wipe_grace_s: 86_400,
        wipe_at_systemd: "2027-01-16 08:00:00 UTC".into(),
        domain: None,
        deploy_user: "deploy".into(),
        authorized_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3 test".into(),
        host_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk1 host".into(),
        host_private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n".into(),
        trusted_cas: vec![],
    }
}

/// The content of a `write_files` entry of the rendered user-data.
fn written_file(user_data: &str, path: &str) -> String {
    let mut lines = user_data.lines().skip_while(|l| l.trim() != format!("- path: {path}"));
    lines.next().unwrap_or_else(|| panic!("{path} is not in the user-data"));
    let mut lines = lines.skip_while(|l| !l.trim_start().starts_with("content: |"));
    lines.next();
    let body: Vec<&str> = lines.take_while(|l| l.starts_with("      ") || l.is_empty()).collect();
    body.iter().map(|l| l.strip_prefix("      ").unwrap_or(l)).collect::<Vec<_>>().join("\n") + "\n"
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker: run scripts/setup/docker.sh");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run_script(script: &Path, env_file: &Path, now: i64, project: &str, data: &Path, receipt: &Path) -> String {
    let out = Command::new("bash")
        .arg(script)
        .env("MUNERO_TRIAL_ENV", env_file)
        .env("MUNERO_NOW", now.to_string())
        .env("MUNERO_COMPOSE_PROJECT", project)
        .env("MUNERO_DATA_GLOB", format!("{}/client.sqlite*", data.display()))
        .env("MUNERO_RECEIPT", receipt)
        .env("MUNERO_NO_POWEROFF", "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn every_variant_installs_the_timer_at_expiry_plus_a_day() {
    for gpu in [false, true] {
        let ud = render(&input(gpu)).unwrap();
        let timer = written_file(&ud, "/etc/systemd/system/munero-expire.timer");
        assert!(timer.contains("OnCalendar=2027-01-16 08:00:00 UTC") && timer.contains("Persistent=true"), "{timer}");
        assert!(ud.contains("[systemctl, enable, --now, munero-expire.timer]"));
        assert!(written_file(&ud, "/etc/munero/trial.env").contains("MUNERO_WIPE_GRACE_S=86400"));
        assert!(written_file(&ud, "/usr/local/lib/munero/expire.sh").contains("/home/deploy/munero/data/client.sqlite*"));
    }
}

#[test]
fn past_expiry_plus_grace_the_script_removes_the_client_data_and_before_it_nothing() {
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("expire.sh");
    std::fs::write(&script, written_file(&render(&input(false)).unwrap(), "/usr/local/lib/munero/expire.sh")).unwrap();
    let env_file = work.path().join("trial.env");
    std::fs::write(&env_file, "MUNERO_TRIAL=acme\nMUNERO_EXPIRES=1800000000\nMUNERO_WIPE_GRACE_S=86400\n").unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["client.sqlite", "client.sqlite.part", "other.txt"] {
        std::fs::write(data.join(f), "rows").unwrap();
    }
    let project = format!("munero-expiry-{}", std::process::id());
    let vol = |role: &str| {
        docker(&["volume", "create", "--label", &format!("com.docker.compose.project={project}"),
                 "--label", &format!("com.docker.compose.volume={role}"), &format!("{project}_{role}")])
    };
    let (client, state, models) = (vol("client_data"), vol("app_state"), vol("ollama_models"));
    let listed = || docker(&["volume", "ls", "-q", "--filter", &format!("label=com.docker.compose.project={project}")]);
    let receipt = work.path().join("receipt.txt");

    // An hour before the wipe is due (the expiry was moved, or the clock is early): nothing goes.
    let out = run_script(&script, &env_file, 1_800_000_000 + 86_400 - 3600, &project, &data, &receipt);
    assert!(out.contains("not yet"), "{out}");
    assert!(listed().contains(&client) && data.join("client.sqlite").exists());

    let out = run_script(&script, &env_file, 1_800_000_000 + 86_400 + 60, &project, &data, &receipt);
    let left = listed();
    assert!(!left.contains(&client) && !left.contains(&state), "{out}\n{left}");
    assert!(left.contains(&models), "the model volume is not client data and stays");
    assert!(!data.join("client.sqlite").exists() && !data.join("client.sqlite.part").exists());
    assert!(data.join("other.txt").exists());
    let r = std::fs::read_to_string(&receipt).unwrap();
    assert!(r.contains(&format!("removed volume: {client}")) && r.contains("client_data volumes left: 0"), "{r}");
    docker(&["volume", "rm", "-f", &models]);
}
