//! How to reach a recorded trial: SSH target with its pinned host key, remote stack directory,
//! public URL, and the Basic Auth credentials kept 0600 in the trial's directory.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

use crate::deploy::env::Credentials;
use crate::error::usage;
use crate::site::{self, Tls};
use crate::ssh::{hostkey, ConnectOptions, Session, Target};
use crate::trial::{Trial, DEPLOY_USER};
use crate::ctx::Ctx;
use crate::validate;

pub const CREDENTIALS_FILE: &str = "basic-auth.toml";
pub const DEFAULT_REMOTE_DIR: &str = "munero";

pub fn load_trial(ctx: &Ctx, name: &str) -> Result<Trial> {
    validate::trial_name(name)?;
    ctx.store.load(name)?.ok_or_else(|| {
        usage(format!(
            "no trial named {name} in {} (create it first, or register an existing host with \
             `create {name} --provider ssh --host ...`)",
            ctx.store.root().display()
        ))
    })
}

pub fn ssh_host(t: &Trial) -> Result<String> {
    t.ssh_host
        .clone()
        .or_else(|| t.ipv4.clone())
        .ok_or_else(|| anyhow!("trial {} has no address yet (is the server running? see `status`)", t.name))
}

pub fn ssh_port(t: &Trial) -> u16 {
    t.ssh_port.unwrap_or_else(|| host_port(t, 22))
}

/// The port to use from here for the server's `guest` port (differs behind port forwards).
pub fn host_port(t: &Trial, guest: u16) -> u16 {
    t.forwards.get(&guest.to_string()).copied().unwrap_or(guest)
}

pub fn remote_dir(t: &Trial) -> String {
    t.remote_dir.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| DEFAULT_REMOTE_DIR.to_string())
}

/// Key file paths in the record are relative to the trial directory (or absolute).
pub fn trial_path(ctx: &Ctx, t: &Trial, file: &str) -> PathBuf {
    ctx.store.trial_dir(&t.name).join(file)
}

pub fn target(ctx: &Ctx, t: &Trial) -> Result<Target> {
    if t.keys.host_public_key.is_empty() {
        return Err(anyhow!(
            "trial {} has no pinned host key in its record; refusing to connect without one",
            t.name
        ));
    }
    let host_key = hostkey::load_pinned(&trial_path(ctx, t, &t.keys.host_public_key))?;
    let identity = (!t.keys.ssh_private_key.is_empty()).then(|| trial_path(ctx, t, &t.keys.ssh_private_key));
    Ok(Target {
        host: ssh_host(t)?,
        port: ssh_port(t),
        user: if t.ssh_user.is_empty() { DEPLOY_USER.to_string() } else { t.ssh_user.clone() },
        identity,
        host_key,
    })
}

pub async fn connect(ctx: &Ctx, t: &Trial) -> Result<Session> {
    let target = target(ctx, t)?;
    Session::connect(&target, &ConnectOptions::default())
        .await
        .with_context(|| format!("connecting to trial {}", t.name))
}

/// The name the site is served under: the trial's domain, else the name derived from its IPv4
/// (`--domain auto`), else its address.
pub fn site_name(t: &Trial) -> Result<String> {
    if let Some(d) = t.domain.as_ref().filter(|d| !d.is_empty()) {
        return Ok(d.clone());
    }
    if let Some(base) = &t.domain_auto {
        let ip = t.ipv4.as_deref().or(t.ssh_host.as_deref()).and_then(|a| a.parse::<Ipv4Addr>().ok());
        return ip.map(|ip| site::auto_name(ip, base)).ok_or_else(|| {
            anyhow!("trial {} has no IPv4 address yet, so its name under {base} is not known: run `munero-infra status {}`", t.name, t.name)
        });
    }
    ssh_host(t)
}

/// The site's name for a plan, also before the address is known.
pub fn site_label(t: &Trial) -> String {
    site_name(t).unwrap_or_else(|_| t.domain_auto.as_deref().map(site::auto_name_pattern).unwrap_or_default())
}

pub fn url(t: &Trial) -> Result<String> {
    let site = site_name(t)?;
    let host = if site.contains(':') { format!("[{site}]") } else { site };
    Ok(match host_port(t, 443) {
        443 => format!("https://{host}/"),
        p => format!("https://{host}:{p}/"),
    })
}

/// Where the certificate comes from: as chosen at create; records made before that was a
/// choice used ACME with a domain and Caddy's own CA without.
pub fn tls_mode(t: &Trial) -> Tls {
    t.tls.unwrap_or(match &t.domain {
        Some(d) if !d.is_empty() => Tls::Acme,
        _ => Tls::Internal,
    })
}

/// The site checks' view of a trial: its name, certificate source, the address an owned name
/// must resolve to, and how long a certificate may take (`MUNERO_CERT_TIMEOUT`, seconds).
pub fn site_spec(t: &Trial, cert_timeout_s: u64) -> Result<crate::deploy::SiteSpec> {
    let tls = tls_mode(t);
    let owned = t.domain.as_ref().is_some_and(|d| !d.is_empty());
    let dns_expect = if owned && tls.is_acme() { Some(t.ipv4.clone().map_or_else(|| ssh_host(t), Ok)?) } else { None };
    let timeout = std::env::var("MUNERO_CERT_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(cert_timeout_s);
    Ok(crate::deploy::SiteSpec { name: site_name(t)?, tls, dns_expect, cert_timeout_s: timeout })
}

pub fn credentials_path(ctx: &Ctx, t: &Trial) -> PathBuf {
    trial_path(ctx, t, CREDENTIALS_FILE)
}

pub fn load_credentials(ctx: &Ctx, t: &Trial) -> Result<Option<Credentials>> {
    let p = credentials_path(ctx, t);
    if !p.exists() {
        return Ok(None);
    }
    let s = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    Ok(Some(toml::from_str(&s).with_context(|| format!("parsing {}", p.display()))?))
}

/// The trial's Basic Auth credentials, generated once and kept 0600 beside its keys.
pub fn ensure_credentials(ctx: &Ctx, t: &Trial) -> Result<Credentials> {
    if let Some(c) = load_credentials(ctx, t)? {
        return Ok(c);
    }
    let c = Credentials::generate(&t.name)?;
    ctx.store.write_secret(&t.name, CREDENTIALS_FILE, toml::to_string(&c)?.as_bytes())?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use crate::ssh::hostkey;

    #[test]
    fn keys_made_at_create_load_in_the_ssh_layer() {
        let login = crate::keys::generate_ed25519("login").unwrap();
        let k = russh::keys::decode_secret_key(&login.private_openssh, None).unwrap();
        assert_eq!(hostkey::fingerprint(k.public_key()), login.fingerprint);
        let host = crate::keys::generate_ed25519("host").unwrap();
        let pinned = hostkey::parse_pinned(&host.public_openssh).unwrap();
        assert_eq!(hostkey::fingerprint(&pinned), host.fingerprint);
    }
}
