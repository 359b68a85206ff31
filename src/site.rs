//! The name a trial is served under and where its certificate comes from: a domain the operator
//! owns, a name derived from the server's public IPv4 under a wildcard DNS service (`auto`), or
//! the bare address with Caddy's own CA. Pure: no network.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The wildcard DNS service `--domain auto` uses unless the config names another.
pub const DEFAULT_AUTO_BASE: &str = "sslip.io";
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Where the site's certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Tls {
    /// A publicly trusted certificate over ACME (Let's Encrypt).
    Acme,
    /// Let's Encrypt's staging CA: real issuance without the weekly limits, not trusted by browsers.
    AcmeStaging,
    /// Caddy's own CA: every browser warns; for rehearsals and hosts the internet cannot reach.
    Internal,
}

impl Tls {
    pub fn as_str(self) -> &'static str {
        match self {
            Tls::Acme => "acme",
            Tls::AcmeStaging => "acme-staging",
            Tls::Internal => "internal",
        }
    }

    /// Whether a certificate is asked from a CA over the internet (HTTP-01 on port 80).
    pub fn is_acme(self) -> bool {
        self != Tls::Internal
    }

    /// The ACME directory Caddy asks, unless the operator's `.env` names another.
    pub fn directory(self) -> Option<&'static str> {
        match self {
            Tls::Acme => Some(LETS_ENCRYPT),
            Tls::AcmeStaging => Some(LETS_ENCRYPT_STAGING),
            Tls::Internal => None,
        }
    }

    /// The certificate source for people.
    pub fn describe(self) -> &'static str {
        match self {
            Tls::Acme => "from Let's Encrypt, trusted by browsers",
            Tls::AcmeStaging => "from Let's Encrypt's staging CA: browsers warn",
            Tls::Internal => "Caddy's own CA: browsers warn",
        }
    }

    /// Why a client's browser will not trust the site, when it will not.
    pub fn browser_warning(self) -> Option<&'static str> {
        match self {
            Tls::Acme => None,
            Tls::AcmeStaging => Some(
                "the certificate comes from Let's Encrypt's staging CA (a rehearsal setting): browsers do not trust it \
                 and will warn; create the trial without --acme-staging for the client",
            ),
            Tls::Internal => Some(
                "the site uses Caddy's own certificate (--tls internal): the client's browser will warn that the \
                 connection is not private; give the trial a public name (--domain auto or --domain FQDN) for a trusted one",
            ),
        }
    }
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where `--dns` makes the trial's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DnsService {
    /// A zone in the operator's Hetzner account (Hetzner DNS through the Cloud API, same token).
    Hetzner,
}

/// `--domain` as given: `auto` or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainArg {
    Auto,
    Name(String),
}

impl DomainArg {
    pub fn parse(s: &str) -> DomainArg {
        if s.trim().eq_ignore_ascii_case("auto") {
            DomainArg::Auto
        } else {
            DomainArg::Name(s.trim().to_string())
        }
    }
}

/// The name under a wildcard DNS service that resolves to `ip`: dashes, not dots, so the name is
/// one label below the service (sslip.io and nip.io answer both; one label keeps the certificate
/// a plain name under a public suffix).
pub fn auto_name(ip: Ipv4Addr, base: &str) -> String {
    let o = ip.octets();
    format!("{}-{}-{}-{}.{}", o[0], o[1], o[2], o[3], base.trim_matches('.').to_ascii_lowercase())
}

/// What an auto name will be before the address is known (dry runs of a cloud create).
pub fn auto_name_pattern(base: &str) -> String {
    format!("<ipv4 with dashes>.{}", base.trim_matches('.').to_ascii_lowercase())
}

/// The site's name as a plan shows it: the domain, the auto name (or its pattern while the
/// address is not known), else the address.
pub fn planned_name(domain: Option<&str>, auto_base: Option<&str>, ip: Option<Ipv4Addr>) -> String {
    match (domain, auto_base, ip) {
        (Some(d), _, _) => d.to_string(),
        (None, Some(b), Some(ip)) => auto_name(ip, b),
        (None, Some(b), None) => auto_name_pattern(b),
        (None, None, Some(ip)) => ip.to_string(),
        (None, None, None) => "<the server's address>".to_string(),
    }
}

/// Whether `name`, as resolved here (`got`), points at `expected`; else what record to make.
pub fn dns_verdict(name: &str, expected: &str, got: &[std::net::IpAddr]) -> Result<(), String> {
    if got.iter().any(|a| a.to_string() == expected) {
        return Ok(());
    }
    let now = if got.is_empty() {
        "does not resolve".to_string()
    } else {
        format!("resolves to {}", got.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "))
    };
    Err(format!(
        "{name} {now}, not to the server's address {expected}, so no CA would issue its certificate: create the DNS \
         record `{name}. 300 IN A {expected}` at your DNS provider (or create the trial with --dns hetzner to have it \
         made, or use --domain auto), wait until it resolves, then deploy again"
    ))
}

/// Reachable from the internet, so a CA can validate a name pointing at it.
pub fn is_public(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        || o[0] >= 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_auto_name_is_the_address_with_dashes_under_the_service() {
        assert_eq!(auto_name("203.0.113.9".parse().unwrap(), "sslip.io"), "203-0-113-9.sslip.io");
        assert_eq!(auto_name("95.217.1.20".parse().unwrap(), ".NIP.io."), "95-217-1-20.nip.io");
        assert_eq!(auto_name("10.0.0.1".parse().unwrap(), "trials.example.net"), "10-0-0-1.trials.example.net");
        assert_eq!(auto_name_pattern("sslip.io"), "<ipv4 with dashes>.sslip.io");
        let ip = Some("95.217.1.20".parse().unwrap());
        assert_eq!(planned_name(None, Some("sslip.io"), ip), "95-217-1-20.sslip.io");
        assert_eq!(planned_name(None, Some("sslip.io"), None), "<ipv4 with dashes>.sslip.io");
        assert_eq!(planned_name(Some("t.example.com"), None, ip), "t.example.com");
        assert_eq!(planned_name(None, None, ip), "95.217.1.20");
    }

    #[test]
    fn only_addresses_the_internet_reaches_are_public() {
        for ip in ["95.217.1.20", "3.120.0.1", "8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1", "203.0.113.9", "0.0.0.0", "240.0.0.1"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_name_that_does_not_point_at_the_server_says_which_record_to_make() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(dns_verdict("t.example.com", "95.217.1.20", &[ip("95.217.1.20"), ip("2a01::1")]).is_ok());
        let e = dns_verdict("t.example.com", "95.217.1.20", &[]).unwrap_err();
        assert!(e.contains("does not resolve") && e.contains("`t.example.com. 300 IN A 95.217.1.20`"), "{e}");
        let e = dns_verdict("t.example.com", "95.217.1.20", &[ip("198.51.100.4")]).unwrap_err();
        assert!(e.contains("resolves to 198.51.100.4, not to the server's address 95.217.1.20"), "{e}");
    }

    #[test]
    fn domain_auto_is_recognised_in_any_case() {
        assert_eq!(DomainArg::parse("AUTO"), DomainArg::Auto);
        assert_eq!(DomainArg::parse("trial.example.com"), DomainArg::Name("trial.example.com".into()));
    }

    #[test]
    fn only_the_public_ca_is_trusted_by_browsers() {
        assert!(Tls::Acme.browser_warning().is_none());
        assert!(Tls::Internal.browser_warning().unwrap().contains("not private"));
        assert!(Tls::AcmeStaging.browser_warning().unwrap().contains("staging"));
        assert_eq!(Tls::AcmeStaging.directory(), Some(LETS_ENCRYPT_STAGING));
        assert_eq!(Tls::Internal.directory(), None);
    }
}
