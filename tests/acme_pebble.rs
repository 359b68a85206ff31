//! A real ACME flow: Pebble (the ACME test CA from the Debian archive) validates over HTTP-01,
//! its challenge test server answering DNS for every name with this machine's address; Caddy
//! runs the stack's own Caddyfile and obtains certificates for an IP-derived name (as
//! `--domain auto` makes it) and for a name of the operator's. `smoke --only certificate`
//! accepts Pebble's root only when given with --trust-ca; by default (this machine's roots) it
//! rejects the certificate, so the check can fail.

mod common;
mod sshd_fixture;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::Cli;
use serde_json::Value;
use sshd_fixture::Sshd;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn caddy_bin() -> PathBuf {
    std::env::var_os("MUNERO_CADDY_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("caddy"))
}

/// A child process killed when the test ends, its output kept for failures.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e} (run scripts/setup/pebble.sh and scripts/setup/caddy.sh)"));
        Proc { child, log }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16, what: &str, p: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Pebble's own HTTPS endpoint needs a certificate for 127.0.0.1: a throwaway CA signs one.
/// Returns the CA's PEM path (Caddy trusts it to talk ACME).
fn pebble_listener_cert(dir: &Path) -> PathBuf {
    openssl(dir, &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                   "-subj", "/CN=pebble listener CA", "-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
                   "-keyout", "listener.key", "-out", "listener.csr"]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(dir, &["x509", "-req", "-in", "listener.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                   "-days", "2", "-extfile", "san.ext", "-out", "listener.pem"]);
    dir.join("ca.pem")
}

struct Acme {
    _dns: Proc,
    pebble: Proc,
    dir_url: String,
    listener_ca: PathBuf,
    mgmt: u16,
    http_port: u16,
}

fn start_acme(dir: &Path, http_port: u16) -> Acme {
    let dns_port = free_port();
    let mut cmd = Command::new("pebble-challtestsrv");
    cmd.args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", &format!("127.0.0.1:{dns_port}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-management", &format!("127.0.0.1:{}", free_port())]);
    let dns = Proc::spawn(&mut cmd, dir.join("challtestsrv.log"));
    let listener_ca = pebble_listener_cert(dir);
    let (api, mgmt) = (free_port(), free_port());
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{api}"), "managementListenAddress": format!("127.0.0.1:{mgmt}"),
        "certificate": dir.join("listener.pem"), "privateKey": dir.join("listener.key"),
        "httpPort": http_port, "tlsPort": free_port(), "ocspResponderURL": "", "externalAccountBindingRequired": false}});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let mut cmd = Command::new("pebble");
    cmd.arg("-config").arg(dir.join("pebble.json")).args(["-dnsserver", &format!("127.0.0.1:{dns_port}")]);
    // No random sleeps before validation, and every nonce accepted: the flow is what is tested.
    cmd.env("PEBBLE_VA_NOSLEEP", "1").env("PEBBLE_WFE_NONCEREJECT", "0");
    let pebble = Proc::spawn(&mut cmd, dir.join("pebble.log"));
    wait_port(api, "pebble", &pebble);
    Acme { _dns: dns, pebble, dir_url: format!("https://127.0.0.1:{api}/dir"), listener_ca, mgmt, http_port }
}

impl Acme {
    /// The root Pebble signs certificates under (made at its start-up).
    fn root_pem(&self, dir: &Path) -> PathBuf {
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&self.listener_ca).unwrap()).unwrap())
            .build()
            .unwrap();
        let pem = client.get(format!("https://127.0.0.1:{}/roots/0", self.mgmt)).send().unwrap().text().unwrap();
        assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
        let p = dir.join("pebble-root.pem");
        std::fs::write(&p, pem).unwrap();
        p
    }
}

/// Caddy with the stack's Caddyfile serving `name` over ACME from Pebble.
fn start_caddy(dir: &Path, acme: &Acme, name: &str, https_port: u16) -> Proc {
    let site = dir.join(format!("caddy-{https_port}"));
    std::fs::create_dir_all(site.join("auth")).unwrap();
    std::fs::copy(common::repo_root().join("deploy/Caddyfile"), site.join("Caddyfile")).unwrap();
    let hash = Command::new(caddy_bin()).args(["hash-password", "--plaintext", "client-password"]).output().unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap();
    std::fs::write(site.join("auth/users.caddy"), format!("client {}\n", hash.trim())).unwrap();
    let mut cmd = Command::new(caddy_bin());
    cmd.args(["run", "--config", "Caddyfile", "--adapter", "caddyfile"])
        .current_dir(&site)
        .env("HOME", &site)
        .env("XDG_DATA_HOME", site.join("data"))
        .env("XDG_CONFIG_HOME", site.join("config"))
        .env("MUNERO_DOMAIN", name)
        .env("MUNERO_TLS", "acme-private")
        .env("MUNERO_ACME_CA", &acme.dir_url)
        .env("MUNERO_ACME_CA_ROOT", &acme.listener_ca)
        .env("ACME_EMAIL", "ops@munero.test")
        .env("MUNERO_HTTP_PORT", acme.http_port.to_string())
        .env("MUNERO_HTTPS_PORT", https_port.to_string());
    let p = Proc::spawn(&mut cmd, site.join("caddy.log"));
    wait_port(https_port, "caddy", &p);
    p
}

/// An existing host (the sshd fixture) registered as `trial`, served under `name` with ACME, its
/// HTTPS on `https_port` of 127.0.0.1, and Basic Auth credentials made by a first deploy step.
fn trial_for(cli: &Cli, sshd: &Sshd, trial: &str, domain: &[&str], https_port: u16, work: &Path) {
    let port = sshd.port.to_string();
    let remote = work.join(format!("stack-{trial}"));
    let mut args = vec![
        "create", trial, "--provider", "ssh", "--host", "127.0.0.1", "--port", &port, "--user", &sshd.user,
        "--identity", sshd.client_key.to_str().unwrap(), "--host-key", sshd.host_pub.to_str().unwrap(),
        "--remote-dir", remote.to_str().unwrap(), "--tls", "acme",
    ];
    args.extend_from_slice(domain);
    cli.run(&args).ok();
    let record = cli.trial_dir(trial).join("trial.toml");
    let mut t: toml::Table = toml::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    t.insert("forwards".into(), toml::Value::Table([("443".to_string(), toml::Value::Integer(https_port.into()))].into_iter().collect()));
    std::fs::write(&record, toml::to_string(&t).unwrap()).unwrap();
    cli.run(&["deploy", trial, "--only", "check-env"]).ok();
}

fn certificate(cli: &Cli, trial: &str, trust: Option<&Path>) -> (i32, Value, String) {
    let mut args = vec!["--output", "json", "smoke", trial, "--only", "certificate"];
    if let Some(p) = trust {
        args.extend(["--trust-ca", p.to_str().unwrap()]);
    }
    let r = cli.run(&args);
    (r.code, r.json(), r.stderr)
}

#[test]
fn caddy_gets_certificates_from_pebble_for_an_ip_name_and_an_owned_name_and_smoke_trusts_them_only_when_told() {
    let work = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let acme = start_acme(work.path(), http_port);
    let sshd = Sshd::start();
    // A first certificate takes Pebble a few seconds; an untrusted one fails at once.
    let cli = Cli::new(None).env("MUNERO_CERT_TIMEOUT", "90");

    // The name `--domain auto` gives a server at 127.0.0.1 (refused at create for a non-public
    // address, so it is set on the record as create would for a public one).
    let ip_name = munero_infra::site::auto_name("127.0.0.1".parse().unwrap(), "sslip.io");
    for (trial, domain) in [("acme-ip", ip_name.as_str()), ("acme-owned", "trial.munero.test")] {
        let https_port = free_port();
        let caddy = start_caddy(work.path(), &acme, domain, https_port);
        trial_for(&cli, &sshd, trial, &["--domain", domain], https_port, work.path());

        let root = acme.root_pem(work.path());
        let (code, doc, err) = certificate(&cli, trial, Some(&root));
        assert_eq!(code, 0, "{domain}: {err}\n{doc}\ncaddy:\n{}\npebble:\n{}", caddy.log(), acme.pebble.log());
        let cert = &doc["results"]["certificate"];
        assert!(cert["issuer"].as_str().unwrap().to_ascii_lowercase().contains("pebble"), "{cert}");
        assert!(cert["days_left"].as_i64().unwrap() > 0, "{cert}");
        assert_eq!(cert["verified_against"], "the root given with --trust-ca");
        assert!(caddy.log().contains("certificate obtained successfully"), "{}", caddy.log());

        // This machine's roots do not hold Pebble's: the default smoke rejects the certificate.
        let (code, doc, err) = certificate(&cli, trial, None);
        assert_eq!(code, 1, "{doc}");
        assert!(err.contains("not signed by a root this machine trusts"), "{err}");
        drop(caddy);
    }
}
