//! The deploy record on the host (`<dir>/.munero-deployed`): one `key=value` line for each input
//! a deploy put there (the hashes of env, bundle and images, the model name; the data's hash is
//! the one the upload keeps beside it, `<data>.sha256`) and for what
//! it did with them (the stack brought up from env+bundle+images, the data loaded into the
//! volume). A later deploy whose inputs match skips those steps and goes on to the smoke test;
//! `--force` ignores the record. Steps that run on the host check the record in the very command
//! the plan prints; upload steps compare the hash of what they would send.

use std::collections::BTreeMap;

use crate::ssh::{quote, RemoteCmd};

pub const RECORD_FILE: &str = ".munero-deployed";

pub fn path(remote_dir: &str) -> String {
    format!("{remote_dir}/{RECORD_FILE}")
}

pub fn read_cmd(remote_dir: &str) -> RemoteCmd {
    RemoteCmd::shell(format!("cat -- {} 2>/dev/null || true", quote(&path(remote_dir))))
}

pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Shell that replaces the lines of `keys` in the record file `$R` with `key=value` lines whose
/// values are shell words (already quoted, or `"$var"`).
fn set_lines(pairs: &[(&str, String)]) -> String {
    let drop: Vec<String> = pairs.iter().map(|(k, _)| format!("-e {}", quote(&format!("^{k}=")))).collect();
    let lines: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{{ grep -v {} \"$R\" 2>/dev/null; printf '%s\\n' {}; }} > \"$R.tmp\" && mv -f -- \"$R.tmp\" \"$R\"",
        drop.join(" "),
        lines.join(" ")
    )
}

/// Records `key=value` pairs (values are hex hashes or model names).
pub fn set_cmd(remote_dir: &str, pairs: &[(&str, &str)]) -> RemoteCmd {
    let quoted: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (*k, quote(v))).collect();
    RemoteCmd::shell(format!("umask 077 && R={} && {}", quote(&path(remote_dir)), set_lines(&quoted)))
}

/// Which inputs bring the stack up: a change in any of them means `compose up` again.
const STACK_INPUTS: &str = "^(env|bundle|images)=";

/// `compose up` unless the running stack was brought up from the env, bundle and images the
/// record holds now; records that it was. `prelude` has `cd`'d into `<dir>/deploy` and
/// defined `dc`.
pub fn compose_up_guarded(prelude: &str, up: &str) -> String {
    format!(
        "{prelude} && R=../{RECORD_FILE} && s=$(grep -E '{STACK_INPUTS}' \"$R\" 2>/dev/null | sha256sum | cut -c1-64) && \
         if [ \"$s\" = \"$(sed -n 's/^stack=//p' \"$R\" 2>/dev/null)\" ] && [ -n \"$(dc ps -q 2>/dev/null)\" ]; then \
         echo 'skipped: the stack already runs with this env, bundle and images'; exit 0; fi; \
         {up} && {}",
        set_lines(&[("stack", "\"$s\"".into())]),
    )
}

/// Load the uploaded dataset unless the volume already holds that very file (by its sha256).
pub fn load_data_guarded(remote_dir: &str, load: &str) -> String {
    format!(
        "cd {dir}/deploy && R=../{RECORD_FILE} && h=$(head -c 64 ../data/client.sqlite.sha256 2>/dev/null || true); \
         if [ -n \"$h\" ] && [ \"$h\" = \"$(sed -n 's/^loaded=//p' \"$R\" 2>/dev/null)\" ]; then \
         echo \"skipped: the client_data volume already holds the dataset with sha256 $h\"; exit 0; fi; \
         {load} && {}",
        set_lines(&[("loaded", "\"$h\"".into())]),
        dir = quote(remote_dir),
    )
}

/// Pull the model unless an earlier deploy pulled this one.
pub fn pull_model_guarded(remote_dir: &str, model: &str, pull: &str) -> String {
    format!(
        "R={r} && if grep -qxF {line} \"$R\" 2>/dev/null; then echo {said}; exit 0; fi; \
         ( {pull} ) && umask 077 && {}",
        set_lines(&[("model", quote(model))]),
        r = quote(&path(remote_dir)),
        line = quote(&format!("model={model}")),
        said = quote(&format!("skipped: model {model} was pulled by an earlier deploy")),
    )
}

/// A remote step's output says it skipped (its first line starts with `skipped:`).
pub fn skipped_line(stdout: &str) -> Option<&str> {
    stdout.lines().find(|l| l.starts_with("skipped:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str, path: &str) -> (i32, String) {
        let out = Command::new("bash").arg("-c").arg(script).env("PATH", path).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    }

    #[test]
    fn record_lines_are_replaced_not_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let path = std::env::var("PATH").unwrap();
        assert_eq!(sh(&set_cmd(d, &[("env", "aa"), ("model", "qwen2.5-coder:3b")]).to_command_line(), &path).0, 0);
        assert_eq!(sh(&set_cmd(d, &[("env", "bb")]).to_command_line(), &path).0, 0);
        let (_, text) = sh(&read_cmd(d).to_command_line(), &path);
        let r = parse(&text);
        assert_eq!(r.get("env").map(String::as_str), Some("bb"));
        assert_eq!(r.get("model").map(String::as_str), Some("qwen2.5-coder:3b"));
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(read_cmd("/nonexistent/x").to_command_line(), "cat -- /nonexistent/x/.munero-deployed 2>/dev/null || true");
    }

    /// With a stand-in `docker` that logs its calls: the first run brings the stack up and
    /// records it, the second skips, a changed input brings it up again.
    #[test]
    fn compose_up_runs_once_per_set_of_inputs_while_the_stack_runs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("munero");
        std::fs::create_dir_all(d.join("deploy")).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = dir.path().join("docker.log");
        std::fs::write(
            bin.join("docker"),
            format!("#!/bin/sh\necho \"$*\" >> {}\ncase \"$*\" in *' ps -q') echo c0ffee;; esac\nexit 0\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(bin.join("docker"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let ds = d.to_str().unwrap();
        let up = crate::deploy::compose_up_cmd(ds, false, true, true).to_command_line();
        sh(&set_cmd(ds, &[("env", "e1"), ("bundle", "b1")]).to_command_line(), &path);
        let ups = || std::fs::read_to_string(&log).unwrap_or_default().matches(" up -d").count();

        let (rc, out) = sh(&up, &path);
        assert_eq!((rc, ups()), (0, 1), "{out}");
        let (rc, out) = sh(&up, &path);
        assert_eq!((rc, ups()), (0, 1), "{out}");
        assert!(out.starts_with("skipped: the stack already runs"), "{out}");
        sh(&set_cmd(ds, &[("env", "e2")]).to_command_line(), &path);
        let (rc, out) = sh(&up, &path);
        assert_eq!((rc, ups()), (0, 2), "{out}");
        let forced = crate::deploy::compose_up_cmd(ds, false, true, false).to_command_line();
        assert!(!forced.contains(RECORD_FILE));
        sh(&forced, &path);
        assert_eq!(ups(), 3);
    }

    #[test]
    fn data_is_loaded_once_per_uploaded_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("munero");
        std::fs::create_dir_all(d.join("deploy")).unwrap();
        std::fs::create_dir_all(d.join("data")).unwrap();
        std::fs::write(d.join("deploy/load_client_data.sh"), "echo loaded >> ../loads\n").unwrap();
        let ds = d.to_str().unwrap();
        let load = crate::deploy::load_data_cmd(ds, true).to_command_line();
        let path = std::env::var("PATH").unwrap();
        let loads = || std::fs::read_to_string(d.join("loads")).unwrap_or_default().lines().count();
        std::fs::write(d.join("data/client.sqlite.sha256"), format!("{}\n", "a".repeat(64))).unwrap();
        assert_eq!(sh(&load, &path).0, 0);
        let (_, out) = sh(&load, &path);
        assert!(out.contains("skipped: the client_data volume already holds"), "{out}");
        assert_eq!(loads(), 1);
        std::fs::write(d.join("data/client.sqlite.sha256"), format!("{}\n", "b".repeat(64))).unwrap();
        sh(&load, &path);
        assert_eq!(loads(), 2);
    }

    #[test]
    fn a_skipping_step_says_so_on_its_first_line() {
        assert_eq!(skipped_line("skipped: model m was pulled\n"), Some("skipped: model m was pulled"));
        assert_eq!(skipped_line("pulling manifest\nsuccess\n"), None);
    }
}
