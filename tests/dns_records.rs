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
    assert!(text.contains("ensure DNS record t1.trials.example.com A -> the server's IPv4 (zone example.com, name t1.trials"), "{text}");
    assert!(text.contains("Site (after deploy): https://t1.trials.example.com/"), "{text}");

    let r = cli.create("dns-one", &["--domain", "t1.trials.example.com", "--dns", "hetzner", "--days", "3"]).ok();
    assert!(r.stderr.contains("answer t1.trials.example.com A 203.0.113.10"), "{}", r.stderr);
    let all = rrsets(&fake);
    let made = rrset(&all, "t1.trials").unwrap_or_else(|| panic!("no record made: {all:?}"));
    assert_eq!(made["records"][0]["value"], FIRST_IP);
    assert_eq!(made["labels"]["munero-managed"], "true");
    assert_eq!(made["labels"]["munero-trial"], "dns-one");
    assert_eq!(made["ttl"], 60);
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
    assert!(rrset(&all, "t1.trials").is_none(), "{all:?}");
    assert_eq!(rrset(&all, "taken").unwrap()["records"][0]["value"], "198.51.100.50");
    assert!(all.iter().any(|r| r["type"] == "SOA"));

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
