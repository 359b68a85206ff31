//! Notices to a webhook receiver on 127.0.0.1: "expires soon" from `teardown --warn-before`
//! (once per expiry, nothing deleted), "torn down" and "teardown failed" from the scheduled
//! teardown (against the Hetzner fake); a dead webhook never fails a teardown; the URL (a secret)
//! is never printed. (The "wiped" notice is checked by the deploy e2e suite, which wipes a stack.)

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{now_unix, rfc3339, Cli, Fake};
use serde_json::{json, Value};

/// Answers 200 to every POST and keeps the JSON bodies.
fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/hooks/secret-hook-token", l.local_addr().unwrap().port());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).ok();
            keep.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").ok();
        }
    });
    (url, got)
}

fn events(got: &Arc<Mutex<Vec<Value>>>, event: &str) -> Vec<String> {
    got.lock().unwrap().iter().filter(|v| v["event"] == event).map(|v| v["trial"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn teardown_announces_what_expires_soon_once_and_reports_what_it_tore_down_or_could_not() {
    let fake = Fake::start();
    let (url, got) = receiver();
    let cli = Cli::new(Some(&fake)).env("MUNERO_WEBHOOK_URL", &url);
    let soon = rfc3339(now_unix() + 10 * 3600);
    cli.create("ends-soon", &["--expires", &soon]).ok();
    cli.create("ends-later", &["--days", "5"]).ok();
    cli.create("cannot-go", &["--days", "2"]).ok();

    let status = cli.run(&["--output", "json", "status"]).ok().json();
    let row = |t: &str| status["trials"].as_array().unwrap().iter().find(|r| r["trial"] == t).cloned().unwrap();
    assert_eq!((row("ends-soon")["expires_soon"].as_bool(), row("ends-later")["expires_soon"].as_bool()), (Some(true), Some(false)));
    assert!(cli.run(&["status"]).ok().stdout.contains("(in 10 h)"));

    let r = cli.run(&["--output", "json", "teardown", "--expired", "--warn-before", "24h"]).ok();
    let doc = r.json();
    let listed: Vec<&str> = doc["expiring"].as_array().unwrap().iter().map(|k| k["trial"].as_str().unwrap()).collect();
    assert_eq!(listed, ["ends-soon"], "{doc}");
    assert_eq!(events(&got, "expires_soon"), ["ends-soon"]);
    assert_eq!(fake.servers().len(), 3, "--warn-before deletes nothing");
    assert!(!r.stderr.contains("secret-hook-token") && !r.stdout.contains("secret-hook-token"));
    // The hourly run after: no second notice of the same expiry.
    cli.run(&["teardown", "--expired", "--warn-before", "24h"]).ok();
    assert_eq!(events(&got, "expires_soon").len(), 1);
    assert_eq!(cli.run(&["teardown", "--expired", "--warn-before", "24x"]).code, 2);

    // Three days on, ends-soon and cannot-go have expired; cannot-go's firewall will not go.
    let id = fake.firewalls().iter().find(|f| f["labels"]["munero-trial"] == "cannot-go").unwrap()["id"].clone();
    fake.fault(json!({"method": "DELETE", "path_regex": format!("^/v1/firewalls/{id}$"), "status": 500, "count": 1000}));
    let at = rfc3339(now_unix() + 3 * 86_400);
    let r = cli.env("MUNERO_HTTP_DEADLINE_S", "5").run(&["--output", "json", "teardown", "--expired", "--at", &at]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(events(&got, "torn_down"), ["ends-soon"]);
    assert_eq!(events(&got, "teardown_failed"), ["cannot-go"]);
    let failed = got.lock().unwrap().iter().find(|v| v["event"] == "teardown_failed").cloned().unwrap();
    assert!(failed["text"].as_str().unwrap().contains("FAILED"), "{failed}");
}

#[test]
fn a_dead_webhook_is_a_warning_and_the_teardown_still_succeeds() {
    let fake = Fake::start();
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/hooks/secret-hook-token", l.local_addr().unwrap().port())
    };
    let cli = Cli::new(Some(&fake)).env("MUNERO_WEBHOOK_URL", &dead);
    cli.create("short-one", &["--days", "1"]).ok();
    let at = rfc3339(now_unix() + 2 * 86_400);
    let r = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["destroyed"], json!(["short-one"]));
    assert!(r.stderr.contains("warning: the torn_down notice of short-one was not delivered"), "{}", r.stderr);
    assert!(!r.stderr.contains("secret-hook-token"), "{}", r.stderr);
}
