//! Input validation: every error names the bad value and the fix (exit 2), before anything
//! is created.

use std::net::IpAddr;
use std::sync::OnceLock;

use anyhow::Result;
use regex::Regex;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::usage;

pub const MIN_DAYS: i64 = 1;
pub const MAX_DAYS: i64 = 90;
pub const DEFAULT_DAYS: i64 = 14;

/// `--remote-dir` of an existing host: a directory the stack may own. `/`, the login's home
/// itself and top-level system directories are refused: destroy would have to clean them.
pub fn remote_dir(dir: &str, user: &str) -> Result<String> {
    const SYSTEM: &[&str] = &[
        "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/opt",
        "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
    ];
    let d = dir.trim();
    let norm = d.trim_end_matches('/');
    let home = format!("/home/{user}");
    let bad = |why: &str| {
        usage(format!(
            "--remote-dir {d:?} {why}; give a directory of its own for the stack, e.g. munero (under the login's home) or /opt/munero"
        ))
    };
    if d.is_empty() || norm.is_empty() || matches!(norm, "." | "~" | "$HOME" | "${HOME}") || norm == home || (user == "root" && norm == "/root") {
        return Err(bad("is the root or the login's home directory itself"));
    }
    if SYSTEM.contains(&norm) {
        return Err(bad("is a system directory"));
    }
    if d.split('/').any(|c| c == "..") || d.chars().any(|c| c.is_control()) {
        return Err(bad("must not contain '..' or control characters"));
    }
    Ok(norm.strip_prefix("~/").unwrap_or(norm).to_string())
}

pub fn trial_name(name: &str) -> Result<()> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$").unwrap());
    if re.is_match(name) {
        Ok(())
    } else {
        Err(usage(format!(
            "invalid trial name {name:?}: use 3 to 32 characters, lowercase letters, digits and '-', \
             starting with a letter and not ending with '-' (e.g. acme-demo)"
        )))
    }
}

/// Parse a CIDR (v4 or v6). A bare address becomes /32 or /128. Host bits must be zero.
pub fn cidr(s: &str) -> Result<String> {
    let bad = |why: &str| usage(format!("invalid --ssh-from {s:?}: {why}; give a CIDR such as 203.0.113.7/32 or 2001:db8::/48, or `auto`"));
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().map_err(|_| bad("not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u32 = match len {
        None => max,
        Some(l) => l.parse().map_err(|_| bad("the prefix length is not a number"))?,
    };
    if len > max {
        return Err(bad(&format!("prefix length {len} is larger than {max}")));
    }
    let net = network(ip, len);
    if net != ip {
        return Err(usage(format!(
            "invalid --ssh-from {s:?}: host bits are set; did you mean {net}/{len}?"
        )));
    }
    Ok(format!("{ip}/{len}"))
}

/// What may be opened to SSH. Run on the resolved CIDRs (after `auto`), so a detected address
/// is held to the same rule as a typed one.
///
/// - A /0 opens SSH to the whole internet, which defeats the firewall: refused (exit 2) unless
///   the operator says so with `--allow-ssh-from-anywhere`.
/// - Private, shared (CGNAT), loopback and link-local ranges are allowed, with a warning: no
///   packet from them reaches a cloud VM's public address except through a VPN or from inside
///   the provider's network, so the operator is probably about to lock themselves out.
///
/// Returns the warnings, one sentence each.
pub fn ssh_from_policy(cidrs: &[String], allow_anywhere: bool) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for c in cidrs {
        let (ip, len) = parse_cidr(c).ok_or_else(|| usage(format!("invalid --ssh-from {c:?}: not a CIDR")))?;
        if len == 0 {
            if allow_anywhere {
                warnings.push(format!(
                    "--ssh-from {c} opens SSH to the whole internet (allowed by --allow-ssh-from-anywhere); \
                     only the trial's key and pinned host key protect it"
                ));
                continue;
            }
            return Err(usage(format!(
                "refusing --ssh-from {c}: it opens SSH to the whole internet, which defeats the firewall; \
                 give your address (e.g. --ssh-from auto or --ssh-from 203.0.113.7/32), or add \
                 --allow-ssh-from-anywhere if you really mean it"
            )));
        }
        if let Some(kind) = unroutable_kind(ip, len) {
            warnings.push(format!(
                "--ssh-from {c} is a {kind} range: the trial's public address is reachable from it only \
                 through a VPN or from inside the provider's network; from anywhere else SSH (and deploy) \
                 will not get in"
            ));
        }
    }
    Ok(warnings)
}

fn parse_cidr(c: &str) -> Option<(IpAddr, u32)> {
    let (a, l) = c.split_once('/')?;
    Some((a.parse().ok()?, l.parse().ok()?))
}

/// The kind of non-public range `ip/len` lies wholly inside, if any.
fn unroutable_kind(ip: IpAddr, len: u32) -> Option<&'static str> {
    const V4: &[(&str, u32, &str)] = &[
        ("10.0.0.0", 8, "private"),
        ("172.16.0.0", 12, "private"),
        ("192.168.0.0", 16, "private"),
        ("100.64.0.0", 10, "shared (carrier-grade NAT)"),
        ("127.0.0.0", 8, "loopback"),
        ("169.254.0.0", 16, "link-local"),
    ];
    const V6: &[(&str, u32, &str)] =
        &[("fc00::", 7, "private (unique local)"), ("::1", 128, "loopback"), ("fe80::", 10, "link-local")];
    let table = if ip.is_ipv4() { V4 } else { V6 };
    table.iter().find_map(|(net, plen, kind)| {
        let net: IpAddr = net.parse().ok()?;
        (len >= *plen && network(ip, *plen) == net).then_some(*kind)
    })
}

fn network(ip: IpAddr, len: u32) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            IpAddr::V6((bits & mask).into())
        }
    }
}

pub fn days(n: i64) -> Result<i64> {
    if (MIN_DAYS..=MAX_DAYS).contains(&n) {
        Ok(n)
    } else {
        Err(usage(format!("invalid --days {n}: a trial lasts {MIN_DAYS} to {MAX_DAYS} days")))
    }
}

/// Parse `--expires`: RFC 3339, in the future, at most MAX_DAYS ahead.
pub fn expires(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| usage(format!("invalid --expires {s:?}: use RFC 3339, e.g. 2026-12-31T18:00:00Z")))?;
    if t <= now {
        return Err(usage(format!("invalid --expires {s:?}: it is in the past; give a future time")));
    }
    if t > now + time::Duration::days(MAX_DAYS) {
        return Err(usage(format!("invalid --expires {s:?}: more than {MAX_DAYS} days ahead")));
    }
    Ok(t)
}

/// Parse `--at`: RFC 3339, any time.
pub fn at(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| usage(format!("invalid --at {s:?}: use RFC 3339, e.g. 2026-12-31T18:00:00Z")))
}

pub fn fqdn(s: &str) -> Result<String> {
    let d = s.trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| usage(format!("invalid --domain {s:?}: {why}; give a name such as trial.example.com"));
    if d.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("needs at least two labels"));
    }
    for l in &labels {
        if l.is_empty() || l.len() > 63 {
            return Err(bad("each label must be 1 to 63 characters"));
        }
        if !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || l.starts_with('-') || l.ends_with('-') {
            return Err(bad(&format!("label {l:?} may hold only letters, digits and inner '-'")));
        }
    }
    if !labels.last().unwrap().chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(bad("the top-level label must be letters"));
    }
    Ok(d)
}

/// Simple provider tokens (location, image, server type): letters, digits, '-', '.', '_'.
pub fn token(flag: &str, s: &str) -> Result<()> {
    if !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
        Ok(())
    } else {
        Err(usage(format!("invalid {flag} {s:?}: use letters, digits, '-', '.', '_'")))
    }
}

/// `--subnet`: an EC2 subnet id (subnet- and 8 or 17 hex digits).
pub fn subnet(s: &str) -> Result<()> {
    let hex = s.strip_prefix("subnet-").unwrap_or("");
    if matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(usage(format!("invalid --subnet {s:?}: give a subnet id like subnet-0123456789abcdef0 (aws ec2 describe-subnets)")))
    }
}

/// Read a PEM CA file: must exist and hold at least one certificate.
pub fn trusted_ca(path: &std::path::Path) -> Result<String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("invalid --trusted-ca {}: {e}; give a readable PEM file", path.display())))?;
    if !s.contains("-----BEGIN CERTIFICATE-----") {
        return Err(usage(format!(
            "invalid --trusted-ca {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(s.trim().to_string() + "\n")
}

/// A window such as `24h`, `90m`, `2d` or `3600s`, in seconds.
pub fn window(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num.parse().map_err(|_| usage(format!("invalid {flag} {s:?}: use a number and a unit, e.g. 24h, 90m or 2d")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" | "" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(usage(format!("invalid {flag} {s:?}: the unit must be s, m, h or d (e.g. 24h)"))),
    };
    if secs <= 0 || secs > 90 * 86_400 {
        return Err(usage(format!("invalid {flag} {s:?}: give a window between 1s and 90d")));
    }
    Ok(secs)
}

/// `--trust-ca FILE` of deploy and smoke: a PEM certificate, read now so a bad path fails
/// before anything runs.
pub fn trust_ca(path: Option<&std::path::Path>) -> Result<Option<Vec<u8>>> {
    let Some(p) = path else { return Ok(None) };
    let pem = std::fs::read(p).map_err(|e| usage(format!("invalid --trust-ca {}: {e}; give a readable PEM file", p.display())))?;
    if reqwest::Certificate::from_pem(&pem).is_err() || !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(usage(format!("invalid --trust-ca {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)", p.display())));
    }
    Ok(Some(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_dir_refuses_the_root_the_home_and_system_directories() {
        for bad in ["/", "", ".", "~", "$HOME", "/home/deploy", "/home/deploy/", "/etc", "/srv", "/var/", "/usr", "a/../b"] {
            let e = remote_dir(bad, "deploy").unwrap_err();
            assert_eq!(crate::error::exit_code_of(&e), 2, "{bad}");
        }
        assert_eq!(remote_dir("munero", "deploy").unwrap(), "munero");
        assert_eq!(remote_dir("/srv/munero/", "deploy").unwrap(), "/srv/munero");
        assert_eq!(remote_dir("~/stack", "deploy").unwrap(), "stack");
    }

    #[test]
    fn trial_names() {
        for ok in ["acme", "acme-demo", "a1b", "t23456789012345678901234567890xy"] {
            assert!(trial_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Acme", "1acme", "acme-", "acme_demo", "a.b", "", "t234567890123456789012345678901xy"] {
            let e = trial_name(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn cidrs() {
        assert_eq!(cidr("203.0.113.7/32").unwrap(), "203.0.113.7/32");
        assert_eq!(cidr("203.0.113.7").unwrap(), "203.0.113.7/32");
        assert_eq!(cidr("2001:db8::/48").unwrap(), "2001:db8::/48");
        assert_eq!(cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        let e = cidr("203.0.113.7/24").unwrap_err().to_string();
        assert!(e.contains("203.0.113.0/24"), "{e}");
        for bad in ["300.1.1.1/32", "10.0.0.0/33", "x", "1.2.3.4/x", "2001:db8::/129"] {
            let e = cidr(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn ssh_from_anywhere_is_refused_unless_allowed() {
        for any in ["0.0.0.0/0", "::/0"] {
            let e = ssh_from_policy(&["198.51.100.7/32".into(), any.into()], false).unwrap_err();
            assert_eq!(crate::error::exit_code_of(&e), 2);
            let m = e.to_string();
            assert!(m.contains(any) && m.contains("--allow-ssh-from-anywhere"), "{m}");
            let w = ssh_from_policy(&[any.into()], true).unwrap();
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(w[0].contains("whole internet"), "{w:?}");
        }
    }

    #[test]
    fn ssh_from_public_addresses_pass_without_warnings() {
        let ok: Vec<String> =
            ["198.51.100.7/32", "203.0.113.0/24", "2001:db8::/48", "1.0.0.0/1", "172.32.0.0/16"].map(String::from).to_vec();
        assert_eq!(ssh_from_policy(&ok, false).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn ssh_from_private_loopback_and_link_local_ranges_warn_about_vpn() {
        for (c, kind) in [
            ("10.1.2.3/32", "private"),
            ("10.0.0.0/8", "private"),
            ("172.16.0.0/12", "private"),
            ("172.31.255.0/24", "private"),
            ("192.168.1.0/24", "private"),
            ("100.64.1.1/32", "carrier-grade NAT"),
            ("127.0.0.1/32", "loopback"),
            ("169.254.10.0/24", "link-local"),
            ("fd12:3456::/32", "unique local"),
            ("::1/128", "loopback"),
            ("fe80::1/128", "link-local"),
        ] {
            let w = ssh_from_policy(&[c.to_string()], false).unwrap();
            assert_eq!(w.len(), 1, "{c}: {w:?}");
            assert!(w[0].contains(c) && w[0].contains(kind) && w[0].contains("VPN"), "{c}: {w:?}");
        }
        // A range wider than the private one is not wholly private: no warning.
        assert!(ssh_from_policy(&["8.0.0.0/6".into()], false).unwrap().is_empty());
    }

    #[test]
    fn days_range() {
        assert!(days(1).is_ok() && days(90).is_ok() && days(14).is_ok());
        assert!(days(0).unwrap_err().to_string().contains("--days 0"));
        assert!(days(91).unwrap_err().to_string().contains("--days 91"));
    }

    #[test]
    fn expires_must_be_future_rfc3339() {
        let now = OffsetDateTime::parse("2026-11-25T00:00:00Z", &Rfc3339).unwrap();
        assert!(expires("2026-12-01T00:00:00Z", now).is_ok());
        assert!(expires("2026-11-24T00:00:00Z", now).unwrap_err().to_string().contains("past"));
        assert!(expires("tomorrow", now).unwrap_err().to_string().contains("\"tomorrow\""));
        assert!(expires("2027-11-24T00:00:00Z", now).is_err());
    }

    #[test]
    fn fqdns() {
        assert_eq!(fqdn("Trial.Example.com.").unwrap(), "trial.example.com");
        for bad in ["localhost", "-a.example.com", "a..b.com", "a_b.example.com", "example.123"] {
            assert!(fqdn(bad).unwrap_err().to_string().contains(bad), "{bad}");
        }
    }
}
