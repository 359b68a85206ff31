//! moto (the EC2 emulator) behind the error-injecting proxy of tests/moto/launch.py, and the
//! tests' own view of EC2 through boto3 (tests/moto/ec2.py). One server per test, reset at start.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

use super::{repo_root, Cli};

pub const REGION: &str = "eu-central-1";

pub struct Moto {
    /// The proxy: what AWS_ENDPOINT_URL points at.
    pub endpoint: String,
    /// moto itself (no proxy): for the tests' own reads.
    pub direct: String,
    python: PathBuf,
    child: Child,
    /// Closing it stops the launcher, which stops moto.
    stdin: Option<ChildStdin>,
}

/// moto_server from the setup script's venv (or MUNERO_MOTO_SERVER), and that venv's python.
fn moto_server() -> Option<PathBuf> {
    let p = std::env::var_os("MUNERO_MOTO_SERVER").map(PathBuf::from).unwrap_or_else(|| repo_root().join("tests/moto/.venv/bin/moto_server"));
    p.exists().then_some(p)
}

impl Moto {
    /// None (the test is skipped, and says so) when moto is not installed, except in CI or
    /// under scripts/test-rust.sh (MUNERO_MOTO_SERVER set), where a missing moto is a failure.
    pub fn start() -> Option<Moto> {
        let Some(server) = moto_server() else {
            if std::env::var_os("CI").is_some() || std::env::var_os("MUNERO_MOTO_SERVER").is_some() {
                panic!("moto_server is not installed (CI or MUNERO_MOTO_SERVER set): run scripts/setup/moto.sh (scripts/test-rust.sh does)");
            }
            eprintln!("skipped: moto_server not installed (run scripts/setup/moto.sh)");
            return None;
        };
        let python = server.with_file_name("python");
        let mut child = Command::new(&python)
            .arg(repo_root().join("tests/moto/launch.py"))
            .env("MUNERO_MOTO_SERVER", &server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting tests/moto/launch.py");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("reading the launcher's line");
        let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("moto launcher said {line:?}: {e}"));
        Some(Moto {
            endpoint: v["endpoint"].as_str().unwrap().into(),
            direct: v["moto"].as_str().unwrap().into(),
            python,
            child,
            stdin: Some(stdin),
        })
    }

    fn ec2_py(&self, args: &[&str]) -> Value {
        let out = Command::new(&self.python)
            .arg(repo_root().join("tests/moto/ec2.py"))
            .arg(&self.direct)
            .args(args)
            .output()
            .expect("running tests/moto/ec2.py");
        assert!(out.status.success(), "ec2.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Everything EC2 holds, as boto3 reads it from moto directly.
    pub fn state(&self) -> Value {
        self.ec2_py(&["state"])
    }

    /// What EC2 holds in another region.
    pub fn state_in(&self, region: &str) -> Value {
        self.ec2_py(&["state", region])
    }

    /// A VPC other than the default one, with one subnet: {"vpc", "subnet", "az"}.
    pub fn subnet(&self, region: &str) -> Value {
        self.ec2_py(&["subnet", region])
    }

    /// Make decoys (instances, groups, keys with the given tags); their ids.
    pub fn seed(&self, doc: Value) -> Value {
        self.ec2_py(&["seed", &doc.to_string()])
    }

    fn post(&self, url: &str, body: String) {
        let r = reqwest::blocking::Client::new().post(url).body(body).send().unwrap();
        assert!(r.status().is_success(), "POST {url}: {}", r.status());
    }

    /// Replace the proxy's injection rules.
    pub fn rules(&self, rules: Value) {
        self.post(&format!("{}/__munero/rules", self.endpoint), rules.to_string());
    }

    /// Every EC2 request the proxy saw: {"action", "params"}.
    pub fn requests(&self) -> Vec<Value> {
        let v: Value = reqwest::blocking::get(format!("{}/__munero/requests", self.endpoint)).unwrap().json().unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    pub fn actions(&self, action: &str) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r["action"] == action).map(|r| r["params"].clone()).collect()
    }

    pub fn reset(&self) {
        self.post(&format!("{}/moto-api/reset", self.direct), String::new());
        self.rules(serde_json::json!([]));
    }

    /// The CLI with credentials for moto and nothing from this machine's AWS settings.
    pub fn cli(&self) -> Cli {
        let cli = Cli::new(None);
        let home = cli.cwd.path().join("home");
        cli.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret-not-real")
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", &home.display().to_string())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
