//! `--ssh-from auto`: the operator's public address, as an echo service sees it.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Result;

use crate::error::usage;

/// Find the operator's public address through the echo URL; on failure ask for a CIDR (exit 2).
pub async fn detect_public_cidr(url: &str) -> Result<String> {
    let fail = |why: String| {
        usage(format!(
            "--ssh-from auto: could not find your public address from {url} ({why}); \
             pass an explicit CIDR instead, e.g. --ssh-from 203.0.113.7/32"
        ))
    };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| fail(e.to_string()))?;
    let resp = client.get(url).send().await.map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let body = resp.text().await.map_err(|e| fail(e.to_string()))?;
    let ip = echoed_ip(&body).ok_or_else(|| fail(format!("answer {:?} is not an IP address", body.trim())))?;
    Ok(match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    })
}

/// The address in an echo service's answer: plain text (ipify, ifconfig.me, icanhazip) or a JSON
/// object with `ip` (ipify's ?format=json, ipinfo) or `origin` (httpbin).
fn echoed_ip(body: &str) -> Option<IpAddr> {
    let body = body.trim();
    if let Ok(ip) = body.parse() {
        return Some(ip);
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    ["ip", "origin"].iter().find_map(|k| v.get(*k)?.as_str()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::echoed_ip;

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
}
