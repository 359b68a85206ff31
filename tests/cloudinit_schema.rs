//! Every rendered cloud-init variant (provider hetzner|aws x size cpu|gpu x docker upstream|distro)
//! passes `cloud-init schema --config-file`, run inside a chroot that has cloud-init (built by
//! scripts/setup/cloudinit-root.sh), never on the host.

use std::path::PathBuf;
use std::process::Command;

use munero_infra::cloudinit::{self, UserDataInput};
use munero_infra::keys::generate_ed25519;

/// One fixture builder for the template input.
fn input(provider: &str, gpu: bool, docker_source: &str, cas: usize) -> UserDataInput {
    let host = generate_ed25519("root@schema-check").unwrap();
    let login = generate_ed25519("munero-schema-check").unwrap();
    // A syntactically PEM-shaped CA of typical size (the schema check does not parse it).
    let ca = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", vec!["QUJD".repeat(16); 26].join("\n"));
    UserDataInput {
        trial: "schema-check".into(),
        provider: provider.into(),
        size: if gpu { "gpu" } else { "cpu" }.into(),
        gpu,
        docker_source: docker_source.into(),
        expires_unix: 1_800_000_000,
        expires_rfc3339: "2027-01-15T08:00:00Z".into(),
        expires_systemd: "2027-01-15 08:00:00 UTC".into(),
        wipe_grace_s: 86_400,
        wipe_at_systemd: "2027-01-16 08:00:00 UTC".into(),
        domain: Some("schema-check.trials.example.com".into()),
        deploy_user: "deploy".into(),
        authorized_key: login.public_openssh,
        host_public_key: host.public_openssh,
        host_private_key: host.private_openssh,
        trusted_cas: vec![ca; cas],
    }
}

/// Loads the user-data with PyYAML (cloud-init's own dependency) and runs `bash -n` on every
/// written `.sh` file; prints how many it checked and fails when none or any does not parse.
const SCRIPT_SYNTAX_CHECK: &str = r#"
import subprocess, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
scripts = [f for f in doc.get("write_files", []) if f["path"].endswith(".sh")]
assert scripts, "no scripts found"
for f in scripts:
    r = subprocess.run(["bash", "-n"], input=f["content"].encode(), capture_output=True)
    if r.returncode != 0:
        sys.exit(f["path"] + ": " + r.stderr.decode())
print(len(scripts), "scripts parse")
"#;

fn variants() -> Vec<(&'static str, bool, &'static str)> {
    let mut v = Vec::new();
    for p in ["hetzner", "aws"] {
        for g in [false, true] {
            for d in ["upstream", "distro"] {
                v.push((p, g, d));
            }
        }
    }
    v
}

fn chroot_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("MUNERO_CLOUDINIT_ROOT").map(PathBuf::from),
        std::env::var_os("MUNERO_CACHE").map(|c| PathBuf::from(c).join("cloudinit-root")),
        Some(PathBuf::from("/var/tmp/munero-cloudinit-root")),
    ];
    candidates.into_iter().flatten().find(|d| d.join("usr/bin/cloud-init").exists())
}

#[test]
fn every_variant_passes_cloud_init_schema_in_a_chroot() {
    let Some(root) = chroot_dir() else {
        let msg = "skipped: no chroot with cloud-init (run scripts/setup/cloudinit-root.sh or set MUNERO_CLOUDINIT_ROOT); \
                   the cloud-init schema check did NOT run";
        if std::env::var_os("MUNERO_REQUIRE_CLOUDINIT_ROOT").is_some() {
            panic!("{msg}, and MUNERO_REQUIRE_CLOUDINIT_ROOT is set");
        }
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
        return;
    };
    let work = root.join("tmp").join(format!("munero-schema-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let mut failures = Vec::new();
    for (p, g, d) in variants() {
        for cas in [0, 2] {
            let ud = cloudinit::render(&input(p, g, d, cas)).unwrap();
            let name = format!("{p}-{}-{d}-ca{cas}.yaml", if g { "gpu" } else { "cpu" });
            std::fs::write(work.join(&name), &ud).unwrap();
            let inside = format!("/tmp/{}/{name}", work.file_name().unwrap().to_str().unwrap());
            let out = Command::new("chroot")
                .arg(&root)
                .args(["cloud-init", "schema", "--config-file", &inside])
                .env("LC_ALL", "C.UTF-8")
                .output()
                .expect("running chroot");
            eprintln!("{name}: {} bytes, schema exit {}", ud.len(), out.status.code().unwrap_or(-1));
            // Every shell script the user-data writes must at least parse (bash -n, in the chroot).
            let syntax = Command::new("chroot")
                .arg(&root)
                .args(["python3", "-c", SCRIPT_SYNTAX_CHECK, &inside])
                .output()
                .expect("running chroot python3");
            if !syntax.status.success() {
                failures.push(format!("{name}: shell syntax:\n{}{}", String::from_utf8_lossy(&syntax.stdout), String::from_utf8_lossy(&syntax.stderr)));
            }
            if !out.status.success() {
                failures.push(format!(
                    "{name}:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            assert!(ud.len() <= if p == "aws" { cloudinit::EC2_LIMIT } else { cloudinit::HETZNER_LIMIT }, "{name} is {} bytes, over {p}'s limit", ud.len());
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(failures.is_empty(), "cloud-init schema failures:\n{}", failures.join("\n"));
}

#[test]
fn schema_check_rejects_an_invalid_document() {
    // Proves the check can fail: an unknown top-level type for a known key.
    let Some(root) = chroot_dir() else {
        eprintln!("\n!!!!!!!! skipped: no chroot with cloud-init; the negative schema check did NOT run !!!!!!!!\n");
        return;
    };
    let work = root.join("tmp").join(format!("munero-schema-neg-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("bad.yaml"), "#cloud-config\nssh_pwauth: [1, 2]\nusers: 42\n").unwrap();
    let inside = format!("/tmp/{}/bad.yaml", work.file_name().unwrap().to_str().unwrap());
    let out = Command::new("chroot").arg(&root).args(["cloud-init", "schema", "--config-file", &inside]).output().unwrap();
    let _ = std::fs::remove_dir_all(&work);
    assert!(!out.status.success(), "cloud-init schema accepted an invalid document");
}

#[test]
fn restore_user_data_passes_cloud_init_schema() {
    let Some(root) = chroot_dir() else {
        eprintln!("\n!!!!!!!! skipped: no chroot with cloud-init; the restore user-data schema check did NOT run !!!!!!!!\n");
        return;
    };
    let host = generate_ed25519("root@restore-check").unwrap();
    let ud = cloudinit::render_restore(&host.private_openssh, &host.public_openssh).unwrap();
    let work = root.join("tmp").join(format!("munero-schema-restore-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("restore.yaml"), &ud).unwrap();
    let inside = format!("/tmp/{}/restore.yaml", work.file_name().unwrap().to_str().unwrap());
    let out = Command::new("chroot").arg(&root).args(["cloud-init", "schema", "--config-file", &inside]).env("LC_ALL", "C.UTF-8").output().unwrap();
    let _ = std::fs::remove_dir_all(&work);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
