//! `--ssh-from auto`: the operator's public address, as an IP echo service sees it.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Result;

use crate::error::usage;

/// How long the echo service gets unless `MUNERO_IP_ECHO_TIMEOUT_S` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn timeout() -> Duration {
    std::env::var("MUNERO_IP_ECHO_TIMEOUT_S")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Find the operator's public address through the echo URL; on failure ask for a CIDR (exit 2).
pub async fn detect_public_cidr(url: &str) -> Result<String> {
    detect_public_cidr_within(url, timeout()).await
}

pub async fn detect_public_cidr_within(url: &str, limit: Duration) -> Result<String> {
    let fail = |why: String| {
        usage(format!(
            "--ssh-from auto: could not find your public address from {url} ({why}); \
             pass an explicit CIDR instead, e.g. --ssh-from 203.0.113.7/32"
        ))
    };
    // A silent service must be told apart from a refused or broken one: the fix differs (a
    // proxy or firewall in the way, or a slow network, versus a wrong URL).
    let why = |e: reqwest::Error| {
        if e.is_timeout() {
            format!("timed out after {} s without an answer", limit.as_secs())
        } else {
            munero_provider::error_chain(&e)
        }
    };
    let client = reqwest::Client::builder().timeout(limit).build().map_err(|e| fail(e.to_string()))?;
    let resp = client.get(url).send().await.map_err(|e| fail(why(e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let body = resp.text().await.map_err(|e| fail(why(e)))?;
    let ip = echoed_ip(&body).ok_or_else(|| fail(format!("answer {:?} is not an IP address", body.trim())))?;
    Ok(match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    })
}


/// The address in an echo service's answer: plain text (ipify, ifconfig.me, icanhazip) or a JSON
/// object with `ip` (ipify's ?format=json, ipinfo) or `origin` (httpbin).
pub fn echoed_ip(body: &str) -> Option<IpAddr> {
    let body = body.trim();
    if let Ok(ip) = body.parse() {
        return Some(ip);
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    ["ip", "origin"].iter().find_map(|k| v.get(*k)?.as_str()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_ip_reads_plain_text_and_json_answers_and_refuses_anything_else() {
        assert_eq!(echoed_ip("198.51.100.7\n").unwrap().to_string(), "198.51.100.7");
        assert_eq!(echoed_ip("2001:db8::7").unwrap().to_string(), "2001:db8::7");
        assert_eq!(echoed_ip(r#"{"ip":"198.51.100.8"}"#).unwrap().to_string(), "198.51.100.8");
        assert_eq!(echoed_ip(r#"{"origin": "198.51.100.9"}"#).unwrap().to_string(), "198.51.100.9");
        assert!(echoed_ip("<html>blocked</html>").is_none());
        assert!(echoed_ip(r#"{"ip":"not-an-ip"}"#).is_none());
        assert!(echoed_ip("").is_none());
    }

    #[tokio::test]
    async fn an_echo_service_that_never_answers_is_reported_as_timed_out() {
        // Accepts the connection and then says nothing.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let _hold = std::thread::spawn(move || {
            let conns: Vec<_> = l.incoming().take(2).collect();
            std::thread::sleep(Duration::from_secs(10));
            drop(conns);
        });
        let e = detect_public_cidr_within(&url, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), 2);
        let m = e.to_string();
        assert!(m.contains("timed out after 1 s") && m.contains(&url), "{m}");
    }
}
