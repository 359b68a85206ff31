//! `--dns hetzner` against the Hetzner fake behind Prism (the zones/rrsets endpoints checked
//! against the published spec): the A record is made with the trial's labels and waited for at
//! a real DNS server (Pebble's challenge test server), removed at destroy and teardown; a record
//! of the same name that is not the trial's stops the create before anything exists.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{now_unix, rfc3339, Cli, Fake};
use serde_json::{json, Value};

/// The fake gives its first server this address (TEST-NET-3, from the tenth host on).
const FIRST_IP: &str = "203.0.113.10";

struct DnsServer {
    child: Child,
    port: u16,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A DNS server answering every A question with `ip` (pebble-challtestsrv, scripts/setup/pebble.sh).
fn dns_server(ip: &str) -> DnsServer {
    let port = free_port();
    let child = Command::new("pebble-challtestsrv")
        .args(["-defaultIPv4", ip, "-defaultIPv6", "", "-dns01", &format!("127.0.0.1:{port}"), "-http01", "", "-https01", ""])
        .args(["-tlsalpn01", "", "-management", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble-challtestsrv: run scripts/setup/pebble.sh");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Ready when its TCP listener (same port as UDP) answers.
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "pebble-challtestsrv did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    DnsServer { child, port }
}

fn rrsets(fake: &Fake) -> Vec<Value> {
    fake.state()["rrsets"].as_array().cloned().unwrap_or_default()
}

fn rrset<'a>(all: &'a [Value], name: &str) -> Option<&'a Value> {
    all.iter().find(|r| r["name"] == name && r["type"] == "A")
}

#[test]
fn the_domain_record_is_made_labelled_waited_for_and_removed_and_a_record_not_ours_is_never_touched() {
    let fake = Fake::start();
    fake.seed(json!({"zones": [{"name": "example.com", "rrsets": [
        {"name": "taken", "type": "A", "records": [{"value": "198.51.100.50"}]}]}]}));
    let dns = dns_server(FIRST_IP);
    let cli = Cli::new(Some(&fake)).env("MUNERO_DNS_NAMESERVER", &format!("127.0.0.1:{}", dns.port)).env("MUNERO_DNS_WAIT_S", "20");

    let dry = cli.create("dns-one", &["--domain", "t1.trials.example.com", "--dns", "hetzner", "--dry-run"]).ok().json();
    let text = dry["plan_text"].as_str().unwrap();
    assert!(text.contains("ensure DNS record t1.trials.example.com A -> the server's IPv4, and AAAA -> its IPv6"), "{text}");
    assert!(text.contains("(zone example.com, name t1.trials, ttl 60)"), "{text}");
    assert!(text.contains("Site (after deploy): https://t1.trials.example.com/"), "{text}");

    let r = cli.create("dns-one", &["--domain", "t1.trials.example.com", "--dns", "hetzner", "--days", "3"]).ok();
    assert!(r.stderr.contains("answer t1.trials.example.com A 203.0.113.10"), "{}", r.stderr);
    let all = rrsets(&fake);
    let made = rrset(&all, "t1.trials").unwrap_or_else(|| panic!("no record made: {all:?}"));
    assert_eq!(made["records"][0]["value"], FIRST_IP);
    assert_eq!(made["labels"]["munero-managed"], "true");
    assert_eq!(made["labels"]["munero-trial"], "dns-one");
    assert_eq!(made["ttl"], 60);
    // The fake gives each server a /64; the server's address is its first.
    let v6 = all.iter().find(|r| r["name"] == "t1.trials" && r["type"] == "AAAA").unwrap_or_else(|| panic!("no AAAA: {all:?}"));
    assert!(v6["records"][0]["value"].as_str().unwrap().starts_with("2001:db8:") && v6["records"][0]["value"].as_str().unwrap().ends_with("::1"), "{v6}");
    assert_eq!(v6["labels"]["munero-trial"], "dns-one");
    assert_eq!(r.json()["site"]["name"], "t1.trials.example.com");

    // A record of that name made by someone else: the create stops before making anything.
    let before = fake.servers().len();
    let r = cli.create("dns-two", &["--domain", "taken.example.com", "--dns", "hetzner"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("already exists") && r.stderr.contains("198.51.100.50") && r.stderr.contains("never"), "{}", r.stderr);
    assert_eq!(fake.servers().len(), before, "nothing may be created");
    assert!(!cli.trial_dir("dns-two").join("trial.toml").exists());
    let r = cli.create("dns-three", &["--domain", "t3.example.org", "--dns", "hetzner"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no DNS zone"), "{}", r.stderr);
    let r = cli.create("dns-four", &["--dns", "hetzner"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--domain NAME"), "{}", r.stderr);

    // destroy: the trial's record goes (first: the address may pass to another server), the
    // other record and the zone's own records stay.
    let d = cli.run(&["--output", "json", "destroy", "dns-one", "--yes"]).ok();
    assert!(d.stderr.contains("delete hetzner dns record t1.trials.example.com"), "{}", d.stderr);
    let all = rrsets(&fake);
    assert!(!all.iter().any(|r| r["name"] == "t1.trials"), "{all:?}");
    assert_eq!(rrset(&all, "taken").unwrap()["records"][0]["value"], "198.51.100.50");
    assert!(all.iter().any(|r| r["type"] == "SOA"));

    // A labelled record someone repointed by hand is not the trial's any more: destroy leaves
    // it, says so, and (since it still carries the labels) does not call the trial gone.
    cli.create("dns-six", &["--domain", "t6.example.com", "--dns", "hetzner"]).ok();
    let zone = fake.state()["zones"].as_array().unwrap().iter().find(|z| z["name"] == "example.com").unwrap()["id"].clone();
    let http = reqwest::blocking::Client::new();
    let api = |req: reqwest::blocking::RequestBuilder| req.bearer_auth("test-token-not-secret").send().unwrap().status().as_u16();
    let a = rrset(&rrsets(&fake), "t6").unwrap().clone();
    assert_eq!(api(http.delete(format!("{}/zones/{zone}/rrsets/t6/A", fake.endpoint))), 201);
    let moved = json!({"name": "t6", "type": "A", "ttl": 60, "records": [{"value": "198.51.100.66"}], "labels": a["labels"]});
    assert_eq!(api(http.post(format!("{}/zones/{zone}/rrsets", fake.endpoint)).json(&moved)), 201);
    let d = cli.run(&["destroy", "dns-six", "--yes"]);
    assert!(d.stderr.contains("points at 198.51.100.66 now, not at the trial's server: left as it is"), "{}", d.stderr);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert_eq!(rrset(&rrsets(&fake), "t6").unwrap()["records"][0]["value"], "198.51.100.66");

    // teardown of an expired trial takes its record with it.
    cli.create("dns-five", &["--domain", "t5.example.com", "--dns", "hetzner", "--days", "1"]).ok();
    assert!(rrset(&rrsets(&fake), "t5").is_some());
    let at = rfc3339(now_unix() + 2 * 86_400);
    let td = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]).ok().json();
    assert_eq!(td["destroyed"], json!(["dns-five"]), "{td}");
    let all = rrsets(&fake);
    assert!(rrset(&all, "t5").is_none() && rrset(&all, "taken").is_some(), "{all:?}");
    fake.assert_no_violations();
}

#[test]
fn an_auto_name_is_derived_from_the_address_and_every_plan_shows_the_site_and_its_certificate() {
    let fake = Fake::start();
    let cli = Cli::new(Some(&fake));
    let dry = cli.create("auto-site", &["--dry-run"]).ok().json();
    assert_eq!(dry["site"]["name"], "<ipv4 with dashes>.sslip.io", "{dry}");
    assert_eq!(dry["site"]["tls"], "acme");
    assert!(dry["plan_text"].as_str().unwrap().contains("certificate from Let's Encrypt, trusted by browsers"));
    let made = cli.create("auto-site", &["--days", "2"]).ok().json();
    assert_eq!(made["site"]["name"], "203-0-113-10.sslip.io", "{made}");

    // An existing host given by a public address gets its auto name in the plan; a private
    // one is served with Caddy's own CA, and the plan says the browser will warn.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    let st = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
    assert!(st.success());
    let (k, pk) = (key.to_str().unwrap().to_string(), format!("{}.pub", key.display()));
    for (host, name, tls) in [("95.217.1.20", "95-217-1-20.sslip.io", "acme"), ("10.0.0.7", "10.0.0.7", "internal")] {
        let r = cli.run(&["--output", "json", "create", "box-site", "--provider", "ssh", "--host", host, "--identity", &k, "--host-key", &pk, "--dry-run"]).ok();
        let doc = r.json();
        assert_eq!((doc["site"]["name"].as_str(), doc["site"]["tls"].as_str()), (Some(name), Some(tls)), "{doc}");
        if tls == "internal" {
            assert!(r.stderr.contains("browser will warn"), "{}", r.stderr);
        }
    }
    let r = cli.run(&["create", "box-site", "--provider", "ssh", "--host", "10.0.0.7", "--identity", &k, "--host-key", &pk, "--domain", "auto", "--dry-run"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--domain auto needs a public IPv4"), "{}", r.stderr);
}

#[test]
fn restore_points_the_trials_own_record_at_the_new_server() {
    let fake = Fake::start();
    fake.seed(json!({"zones": [{"name": "example.com"}]}));
    let dns = dns_server(FIRST_IP);
    let cli = Cli::new(Some(&fake)).env("MUNERO_DNS_NAMESERVER", &format!("127.0.0.1:{}", dns.port)).env("MUNERO_DNS_WAIT_S", "20");
    cli.create("dns-back", &["--domain", "back.example.com", "--dns", "hetzner"]).ok();
    assert_eq!(rrset(&rrsets(&fake), "back").unwrap()["records"][0]["value"], FIRST_IP);
    cli.run(&["snapshot", "dns-back"]).ok();
    let dry = cli.run(&["restore", "dns-back", "--replace", "--dry-run"]).ok();
    assert!(dry.stdout.contains("point the trial's DNS record back.example.com at the new address"), "{}", dry.stdout);
    // The fake hands the freed address to the next server; make the trial's record point
    // elsewhere first (still the trial's: same labels) so the repointing shows.
    let zone = fake.state()["zones"].as_array().unwrap()[0]["id"].clone();
    let a = rrset(&rrsets(&fake), "back").unwrap().clone();
    let http = reqwest::blocking::Client::new();
    let api = |req: reqwest::blocking::RequestBuilder| req.bearer_auth("test-token-not-secret").send().unwrap().status().as_u16();
    assert_eq!(api(http.delete(format!("{}/zones/{zone}/rrsets/back/A", fake.endpoint))), 201);
    let stale = json!({"name": "back", "type": "A", "ttl": 60, "records": [{"value": "198.51.100.77"}], "labels": a["labels"]});
    assert_eq!(api(http.post(format!("{}/zones/{zone}/rrsets", fake.endpoint)).json(&stale)), 201);
    let r = cli.run(&["--output", "json", "restore", "dns-back", "--replace", "--yes"]).ok().json();
    let ip = r["ipv4"].as_str().unwrap().to_string();
    let all = rrsets(&fake);
    let a = rrset(&all, "back").unwrap();
    assert_eq!(a["records"][0]["value"].as_str(), Some(ip.as_str()), "{all:?}");
    assert_eq!(a["labels"]["munero-trial"], "dns-back");
    let server = fake.servers().into_iter().next().unwrap();
    let v6 = all.iter().find(|r| r["name"] == "back" && r["type"] == "AAAA").unwrap();
    assert!(v6["records"][0]["value"].as_str().unwrap().starts_with(&server["public_net"]["ipv6"]["ip"].as_str().unwrap().replace("::/64", ":")), "{v6} vs {server}");
    fake.assert_no_violations();
}
