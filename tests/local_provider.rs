//! `--provider local` without booting anything (the real VM runs in tests/vm_e2e): the plan, bad
//! input refused before anything starts, and the VM's end through destroy and teardown.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{now_unix, rfc3339, Cli};

/// A PATH holding stand-ins for the QEMU programs (a dry run only checks they are installed).
fn fake_qemu_path(dir: &Path) -> String {
    for b in ["qemu-system-x86_64", "qemu-img", "genisoimage"] {
        let p = dir.join(b);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{}:/usr/bin:/bin", dir.display())
}

fn built_image(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["disk.qcow2", "vmlinuz", "initrd.img"] {
        std::fs::write(dir.join(f), "x").unwrap();
    }
    dir.to_str().unwrap().to_string()
}

#[test]
fn a_local_dry_run_plans_the_vm_with_its_forwards_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(None).env("PATH", &fake_qemu_path(tmp.path())).env("MUNERO_QEMU_ACCEL", "tcg");
    let img = built_image(&tmp.path().join("img"));
    let doc = cli.run(&["--output", "json", "create", "rehearse", "--provider", "local", "--image", &img, "--dry-run"]).ok().json();
    let steps: Vec<&str> = doc["plan"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["generate_key", "generate_key", "prepare_image", "run_local", "run_local", "boot_vm", "wait_ssh", "record_trial"]);
    let boot = doc["plan"][5]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect::<Vec<_>>().join(" ");
    assert!(boot.contains("-accel tcg,thread=multi") && boot.contains("-kernel"), "{boot}");
    for guest in ["22", "80", "443", "11434", "8000", "3000"] {
        let host = doc["forwards"][guest].as_u64().unwrap();
        assert!(boot.contains(&format!("hostfwd=tcp:127.0.0.1:{host}-:{guest}")), "{guest}: {boot}");
    }
    assert!(!boot.contains("0.0.0.0"), "forwards listen on 127.0.0.1 only");
    // The same trial plans the same ports again (the real run uses what the dry run showed).
    let again = cli.run(&["--output", "json", "create", "rehearse", "--provider", "local", "--image", &img, "--dry-run"]).ok().json();
    assert_eq!(again["forwards"], doc["forwards"]);
    assert_eq!(doc["user_data"].as_str().unwrap().contains("PRIVATE KEY"), false, "the host key is redacted");
    assert!(!cli.trial_dir("rehearse").exists());
}

#[test]
fn bad_local_input_is_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let img = built_image(&tmp.path().join("img"));
    let no_qemu = Cli::new(None).env("PATH", "/usr/bin:/bin").env("MUNERO_QEMU_ACCEL", "tcg");
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        let r = no_qemu.run(&["create", "rehearse", "--provider", "local", "--image", &img]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("qemu-system-x86"), "the message names the package: {}", r.stderr);
    }
    let cli = Cli::new(None).env("PATH", &fake_qemu_path(tmp.path())).env("MUNERO_QEMU_ACCEL", "tcg");
    for (args, says) in [
        (vec!["--image", "/nonexistent/disk.qcow2"], "no such file"),
        (vec!["--image", tmp.path().to_str().unwrap()], "image build"),
        (vec!["--image", img.as_str(), "--size", "gpu"], "no GPU"),
        (vec!["--image", img.as_str(), "--size", "2xlarge"], "<vcpus>x<GiB>"),
    ] {
        let mut a = vec!["create", "rehearse", "--provider", "local"];
        a.extend(args.iter().copied());
        let r = cli.run(&a);
        assert_eq!(r.code, 2, "{a:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{a:?}: {}", r.stderr);
        assert!(!cli.trial_dir("rehearse").exists());
    }
}

/// A local trial record whose "VM" is a plain process (what destroy must stop).
fn fake_vm_trial(cli: &Cli, trial: &str, expires_unix: i64) -> std::process::Child {
    let child = Command::new("sleep").arg("600").stdin(Stdio::null()).spawn().unwrap();
    let dir = cli.trial_dir(trial);
    let vm = dir.join("vm");
    std::fs::create_dir_all(&vm).unwrap();
    std::fs::write(vm.join("disk.qcow2"), "overlay").unwrap();
    std::fs::write(
        dir.join("trial.toml"),
        format!(
            "name = \"{trial}\"\nprovider = \"local\"\nserver_type = \"2x4\"\nexpires_unix = {expires_unix}\n\
             expires = \"{}\"\nipv4 = \"127.0.0.1\"\nssh_port = 40022\nstate = \"running\"\n\n[vm]\npid = {}\n\
             dir = \"{}\"\nqmp = \"{}\"\naccel = \"tcg\"\n",
            rfc3339(expires_unix),
            child.id(),
            vm.display(),
            vm.join("qmp.sock").display()
        ),
    )
    .unwrap();
    child
}

#[test]
fn destroy_and_teardown_stop_the_vm_and_remove_its_files() {
    let cli = Cli::new(None);
    let mut live = fake_vm_trial(&cli, "vm-live", now_unix() + 86_400);
    let status = cli.run(&["--output", "json", "status"]).ok().json();
    assert_eq!(status["trials"][0]["state"], "running", "{status}");

    let plan = cli.run(&["--output", "json", "destroy", "vm-live", "--dry-run"]).ok().json();
    let steps: Vec<&str> = plan["plan"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["stop_vm", "remove_vm_files", "forget_local"]);
    cli.run(&["destroy", "vm-live", "--yes"]).ok();
    assert!(live.try_wait().unwrap().is_some() || live.wait().is_ok(), "the VM process is gone");
    assert!(!cli.trial_dir("vm-live").exists());

    let mut old = fake_vm_trial(&cli, "vm-old", now_unix() - 60);
    let mut keep = fake_vm_trial(&cli, "vm-keep", now_unix() + 86_400);
    let doc = cli.run(&["--output", "json", "teardown", "--expired"]).ok().json();
    assert_eq!(doc["destroyed"], serde_json::json!(["vm-old"]), "{doc}");
    let _ = old.wait();
    assert!(!cli.trial_dir("vm-old").exists());
    assert!(keep.try_wait().unwrap().is_none(), "a live trial's VM keeps running");
    assert!(cli.trial_dir("vm-keep").join("vm/disk.qcow2").exists());
    cli.run(&["destroy", "vm-keep", "--yes"]).ok();
    let _ = keep.wait();
}
