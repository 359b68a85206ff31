//! What deploy puts under the stack directory on a host, written there as a manifest, so that
//! destroy on an existing host removes exactly that and never a directory it did not make.

use crate::deploy::{compose_cmd, remote_data_path, wipe_cmd};
use crate::ssh::{quote, RemoteCmd};

pub const MANIFEST_FILE: &str = ".munero-manifest";

/// Paths relative to the stack directory; a trailing `/` is a directory removed only when empty.
pub const ENTRIES: &[&str] = &[
    "deploy",
    "backend",
    "frontend",
    "data/client.sqlite",
    "data/client.sqlite.part",
    "data/client.sqlite.sha256",
    "data/client.sqlite.blocks",
    "data/client.sqlite.part.blocks",
    "data/",
    ".munero-deployed",
];

/// Write (or refresh) the manifest before anything else lands in the directory. Whether the
/// directory itself was made by us is decided the first time and kept.
pub fn write_cmd(remote_dir: &str) -> RemoteCmd {
    let d = quote(remote_dir);
    let m = quote(&format!("{remote_dir}/{MANIFEST_FILE}"));
    let entries: Vec<String> = ENTRIES.iter().map(|e| quote(e)).collect();
    RemoteCmd::shell(format!(
        "c=no; if [ -f {m} ]; then grep -qx '#dir-created=yes' {m} && c=yes; elif [ ! -e {d} ]; then c=yes; fi; \
         mkdir -p {d} && umask 077 && printf '%s\\n' '# what munero-infra deploy put here; destroy removes exactly this' \
         \"#dir-created=$c\" {} > {m}",
        entries.join(" ")
    ))
}

/// The stack's wipe when a stack is there; a wipe that does not verify is reported, and the
/// volumes go with the stack in the next step anyway.
pub fn wipe_if_deployed_cmd(remote_dir: &str, gpu: bool) -> RemoteCmd {
    RemoteCmd::shell(format!(
        "if [ -f {compose} ]; then {wipe} || echo 'warning: the wipe did not verify; the volumes are removed next' >&2; \
         else echo 'no stack on the host'; fi",
        compose = quote(&format!("{remote_dir}/deploy/docker-compose.yml")),
        wipe = wrap(&wipe_cmd(remote_dir, gpu)),
    ))
}

/// Stack down with its volumes, then the manifest's entries (never a path outside the directory),
/// the manifest, and the directory itself only when we made it and it is empty.
pub fn remove_ours_cmd(remote_dir: &str, gpu: bool) -> RemoteCmd {
    let d = quote(remote_dir);
    let m = quote(&format!("{remote_dir}/{MANIFEST_FILE}"));
    let down = compose_cmd(remote_dir, gpu, &["down", "--volumes", "--remove-orphans"]);
    RemoteCmd::shell(format!(
        "if [ -f {compose} ]; then docker info >/dev/null 2>&1 || {{ echo {engine} >&2; exit 1; }}; {down} || exit 1; fi; \
         if [ ! -f {m} ]; then rm -f -- {data}; echo 'no manifest: nothing else of ours on the host'; exit 0; fi; \
         c=$(grep -qx '#dir-created=yes' {m} && echo yes); \
         while IFS= read -r p; do case \"$p\" in ''|'#'*|/*|*..*) continue;; \
           */) rmdir -- {d}/\"$p\" 2>/dev/null;; *) rm -rf -- {d}/\"$p\";; esac; done < {m}; \
         rm -f -- {m}; if [ \"$c\" = yes ]; then rmdir -- {d} 2>/dev/null; fi; \
         echo 'removed what deploy put on the host'",
        compose = quote(&format!("{remote_dir}/deploy/docker-compose.yml")),
        down = wrap(&down),
        data = quote(&remote_data_path(remote_dir)),
        engine = quote(
            "the Docker engine on the host does not answer, so the stack and its volumes (the client data) cannot be \
             removed: start it (`sudo systemctl start docker`) and run destroy again; nothing was removed"
        ),
    ))
}

/// A command line as one subshell, so its `cd` and `exit` stay inside.
fn wrap(cmd: &RemoteCmd) -> String {
    format!("( {} )", cmd.to_command_line())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str, cwd: &std::path::Path) -> (i32, String) {
        let out = Command::new("bash").arg("-c").arg(script).current_dir(cwd).output().unwrap();
        (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    #[test]
    fn removal_takes_only_the_manifests_entries_and_keeps_a_directory_we_did_not_make() {
        let tmp = tempfile::tempdir().unwrap();
        let srv = tmp.path().join("srv");
        std::fs::create_dir_all(srv.join("clientapp")).unwrap();
        std::fs::write(srv.join("clientapp/important.txt"), "x").unwrap();
        let rd = srv.to_str().unwrap();
        assert_eq!(sh(&write_cmd(rd).to_command_line(), tmp.path()).0, 0);
        std::fs::create_dir_all(srv.join("deploy")).unwrap();
        std::fs::create_dir_all(srv.join("data")).unwrap();
        std::fs::write(srv.join("data/client.sqlite"), "db").unwrap();
        std::fs::write(srv.join("deploy/Caddyfile"), "c").unwrap();
        // A second deploy keeps the first answer about who made the directory.
        assert_eq!(sh(&write_cmd(rd).to_command_line(), tmp.path()).0, 0);
        assert!(std::fs::read_to_string(srv.join(MANIFEST_FILE)).unwrap().contains("#dir-created=no"));
        // No docker here: the stack-down part is skipped because the compose file is absent.
        let (rc, out) = sh(&remove_ours_cmd(rd, false).to_command_line(), tmp.path());
        assert_eq!(rc, 0, "{out}");
        assert!(srv.join("clientapp/important.txt").exists(), "the client's own files must stay");
        assert!(!srv.join("deploy").exists() && !srv.join("data").exists() && !srv.join(MANIFEST_FILE).exists());
        assert!(srv.exists());
    }

    #[test]
    fn a_directory_we_made_goes_when_empty_and_a_manifest_cannot_reach_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = tmp.path().join("munero");
        let rds = rd.to_str().unwrap();
        assert_eq!(sh(&write_cmd(rds).to_command_line(), tmp.path()).0, 0);
        assert!(std::fs::read_to_string(rd.join(MANIFEST_FILE)).unwrap().contains("#dir-created=yes"));
        std::fs::write(tmp.path().join("outside.txt"), "keep").unwrap();
        let mut m = std::fs::read_to_string(rd.join(MANIFEST_FILE)).unwrap();
        m.push_str("../outside.txt\n/etc/hostname\n");
        std::fs::write(rd.join(MANIFEST_FILE), m).unwrap();
        let (rc, out) = sh(&remove_ours_cmd(rds, false).to_command_line(), tmp.path());
        assert_eq!(rc, 0, "{out}");
        assert!(!rd.exists());
        assert!(tmp.path().join("outside.txt").exists());
    }

    #[test]
    fn a_stack_whose_engine_does_not_answer_stops_the_removal_and_says_to_start_it() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = tmp.path().join("srv");
        std::fs::create_dir_all(rd.join("deploy")).unwrap();
        std::fs::create_dir_all(rd.join("data")).unwrap();
        std::fs::write(rd.join("deploy/docker-compose.yml"), "services: {}\n").unwrap();
        std::fs::write(rd.join("data/client.sqlite"), "db").unwrap();
        assert_eq!(sh(&write_cmd(rd.to_str().unwrap()).to_command_line(), tmp.path()).0, 0);
        // A `docker` whose engine is down, first on PATH.
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("docker"), "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n").unwrap();
        std::fs::set_permissions(bin.join("docker"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let script = format!("PATH={}:$PATH; {}", bin.display(), remove_ours_cmd(rd.to_str().unwrap(), false).to_command_line());
        let (rc, out) = sh(&script, tmp.path());
        assert_eq!(rc, 1, "{out}");
        assert!(out.contains("Docker engine on the host does not answer") && out.contains("systemctl start docker"), "{out}");
        assert!(rd.join("data/client.sqlite").exists() && rd.join(MANIFEST_FILE).exists(), "nothing goes while the volumes stay");
    }

    #[test]
    fn without_a_manifest_only_the_uploaded_dataset_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = tmp.path().join("srv");
        std::fs::create_dir_all(rd.join("data")).unwrap();
        std::fs::write(rd.join("data/client.sqlite"), "db").unwrap();
        std::fs::write(rd.join("data/other.txt"), "keep").unwrap();
        let (rc, out) = sh(&remove_ours_cmd(rd.to_str().unwrap(), false).to_command_line(), tmp.path());
        assert_eq!(rc, 0, "{out}");
        assert!(out.contains("no manifest"));
        assert!(!rd.join("data/client.sqlite").exists() && rd.join("data/other.txt").exists());
    }
}
