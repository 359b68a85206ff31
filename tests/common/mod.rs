//! Test fixtures: the Hetzner API fake (behind Prism), the real binary, an IP echo server.
//! One builder per thing.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Hetzner API fake, with Prism checking the contract in front of it when the spec exists.
pub struct Fake {
    pub endpoint: String,
    pub control: String,
    pub prism: bool,
    pub violations_log: Option<PathBuf>,
    child: Child,
    _stdin: ChildStdin,
    http: reqwest::blocking::Client,
}

impl Fake {
    pub fn start() -> Fake {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Fake {
        let launcher = repo_root().join("tests/hetzner_fake/launch.py");
        let prism_bin = repo_root().join("tests/hetzner_fake/node_modules/.bin/prism");
        let mut args: Vec<String> = vec![launcher.display().to_string(), "--exit-on-stdin-eof".into()];
        if prism_bin.exists() {
            args.push("--prism".into());
        } else {
            eprintln!("skipped: contract check (Prism not installed at {}; run scripts/setup/prism.sh)", prism_bin.display());
        }
        args.extend(["--action-polls", "1", "--starting-polls", "1"].iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new("python3")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting tests/hetzner_fake/launch.py");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("reading the launcher's line");
        let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("launcher said {line:?}: {e}"));
        let prism = v["prism"].as_bool().unwrap_or(false);
        if !prism {
            eprintln!("skipped: contract check ({})", v["contract_check"]);
        }
        Fake {
            endpoint: v["endpoint"].as_str().unwrap().to_string(),
            control: v["control"].as_str().unwrap().to_string(),
            prism,
            violations_log: v["violations_log"].as_str().map(PathBuf::from),
            child,
            _stdin: stdin,
            http: reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        }
    }

    fn url(&self, p: &str) -> String {
        format!("{}/__fake/{p}", self.control)
    }

    pub fn state(&self) -> Value {
        self.http.get(self.url("state")).send().unwrap().json().unwrap()
    }

    pub fn requests(&self) -> Vec<Value> {
        let v: Value = self.http.get(self.url("requests")).send().unwrap().json().unwrap();
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Requests with this method whose path equals `path` (e.g. "/v1/servers").
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests().iter().filter(|r| r["method"] == method && r["path"] == path).count()
    }

    /// Any request that changes something (POST/PUT/DELETE) on the API.
    pub fn mutating_requests(&self) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r["method"] != "GET").collect()
    }

    pub fn fault(&self, f: Value) {
        let r = self.http.post(self.url("faults")).json(&f).send().unwrap();
        assert!(r.status().is_success(), "adding fault: {}", r.text().unwrap());
    }

    pub fn seed(&self, s: Value) -> Value {
        let r = self.http.post(self.url("seed")).json(&s).send().unwrap();
        assert!(r.status().is_success(), "seeding: {}", r.text().unwrap_or_default());
        r.json().unwrap()
    }

    pub fn config(&self, c: Value) {
        let r = self.http.post(self.url("config")).json(&c).send().unwrap();
        assert!(r.status().is_success());
    }

    pub fn servers(&self) -> Vec<Value> {
        self.state()["servers"].as_array().cloned().unwrap_or_default()
    }
    pub fn firewalls(&self) -> Vec<Value> {
        self.state()["firewalls"].as_array().cloned().unwrap_or_default()
    }
    pub fn ssh_keys(&self) -> Vec<Value> {
        self.state()["ssh_keys"].as_array().cloned().unwrap_or_default()
    }

    /// Names of every resource of a kind.
    pub fn names(&self, kind: &str) -> Vec<String> {
        let mut v: Vec<String> = self.state()[kind]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|x| x["name"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    }

    /// True when nothing exists at the fake.
    pub fn is_empty(&self) -> bool {
        self.servers().is_empty() && self.firewalls().is_empty() && self.ssh_keys().is_empty()
    }

    /// Prism's violations so far (empty without Prism).
    pub fn violations(&self) -> String {
        match &self.violations_log {
            Some(p) if self.prism => std::fs::read_to_string(p).unwrap_or_default(),
            _ => String::new(),
        }
    }

    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.trim().is_empty(), "Prism reported contract violations:\n{v}");
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A run of the real binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as exactly one JSON document (panics otherwise).
    pub fn json(&self) -> Value {
        let mut it = serde_json::Deserializer::from_str(&self.stdout).into_iter::<Value>();
        let first = it
            .next()
            .unwrap_or_else(|| panic!("no JSON on stdout; stderr:\n{}", self.stderr))
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr));
        assert!(it.next().is_none(), "more than one JSON document on stdout:\n{}", self.stdout);
        first
    }

    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// Builder for running `munero-infra` against a fake with its own state dir.
pub struct Cli {
    pub state: tempfile::TempDir,
    pub cwd: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cli {
    pub fn new(fake: Option<&Fake>) -> Cli {
        let mut env = vec![
            ("MUNERO_HTTP_BACKOFF_MS".to_string(), "20".to_string()),
            ("MUNERO_POLL_MS".to_string(), "20".to_string()),
            ("MUNERO_POLL_TIMEOUT_S".to_string(), "60".to_string()),
            ("MUNERO_HTTP_TIMEOUT_S".to_string(), "20".to_string()),
            // Never reach out for the address in tests unless a test sets an echo server.
            ("MUNERO_IP_ECHO_URL".to_string(), "http://127.0.0.1:9/".to_string()),
        ];
        if let Some(f) = fake {
            env.push(("HCLOUD_TOKEN".into(), "test-token-not-secret".into()));
            env.push(("HCLOUD_ENDPOINT".into(), f.endpoint.clone()));
        }
        Cli { state: tempfile::tempdir().unwrap(), cwd: tempfile::tempdir().unwrap(), env }
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.retain(|(a, _)| a != k);
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn without_env(mut self, k: &str) -> Self {
        self.env.retain(|(a, _)| a != k);
        self
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state.path().join("state")
    }

    pub fn trial_dir(&self, trial: &str) -> PathBuf {
        self.state_dir().join("trials").join(trial)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let mut c = Command::new(env!("CARGO_BIN_EXE_munero-infra"));
        // The machine's own AWS settings must not reach a test (AWS tests set their own).
        for k in AWS_ENV {
            c.env_remove(k);
        }
        // Nor an instance role of the machine the tests run on.
        c.env("AWS_EC2_METADATA_DISABLED", "true");
        c.args(args)
            .current_dir(self.cwd.path())
            .stdin(Stdio::null())
            .env_remove("HCLOUD_TOKEN")
            .env_remove("HCLOUD_ENDPOINT")
            .env_remove("MUNERO_STATE_DIR")
            .env("XDG_CONFIG_HOME", self.cwd.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.cwd.path().join("xdg-data"))
            .env("MUNERO_STATE_DIR", self.state_dir());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let out = c.output().expect("running munero-infra");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run on a pseudo-terminal (util-linux `script`), typing `input`. Output comes back merged
    /// in `stdout`.
    pub fn run_on_tty(&self, args: &[&str], input: &str) -> Run {
        let mut cmdline = shell_quote(env!("CARGO_BIN_EXE_munero-infra"));
        for a in args {
            cmdline.push(' ');
            cmdline.push_str(&shell_quote(a));
        }
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &cmdline, "/dev/null"])
            .current_dir(self.cwd.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("HCLOUD_TOKEN")
            .env_remove("HCLOUD_ENDPOINT")
            .env("XDG_CONFIG_HOME", self.cwd.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.cwd.path().join("xdg-data"))
            .env("MUNERO_STATE_DIR", self.state_dir());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("running script(1)");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `create` with the usual test flags plus `extra`, JSON output.
    pub fn create(&self, trial: &str, extra: &[&str]) -> Run {
        let mut a = vec!["--output", "json", "create", trial, "--provider", "hetzner", "--ssh-from", "198.51.100.7/32"];
        a.extend_from_slice(extra);
        self.run(&a)
    }
}

/// Environment that makes the AWS provider count as configured or changes where it goes.
pub const AWS_ENV: [&str; 13] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "MUNERO_AWS",
];

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Mode bits of a path.
pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A tiny HTTP server answering every request with `body` (an IP echo service).
pub struct EchoServer {
    pub url: String,
}

impl EchoServer {
    pub fn start(body: &'static str) -> EchoServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for s in l.incoming().take(50) {
                let Ok(mut s) = s else { continue };
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes());
            }
        });
        EchoServer { url }
    }
}

impl EchoServer {
    /// An echo service that accepts connections and never answers (a proxy or firewall eating
    /// the request). Connections stay open as long as the test runs.
    pub fn silent() -> EchoServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let held: Vec<_> = l.incoming().take(50).collect();
            std::thread::sleep(Duration::from_secs(600));
            drop(held);
        });
        EchoServer { url }
    }
}

/// Labels of a fake resource as a JSON object.
pub fn labels(v: &Value) -> Value {
    v.get("labels").cloned().unwrap_or(json!({}))
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// RFC 3339 for unix seconds (UTC), without a time crate in the tests.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, (secs % 3600) / 60, secs % 60)
}
