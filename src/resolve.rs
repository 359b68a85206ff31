//! `create`'s inputs, resolved without touching the network: flags over the trial's earlier
//! record (a resumed create keeps what it was made with) over `munero.toml` over the provider's
//! defaults. Pure, so every precedence rule is a unit test.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Result;
use munero_provider::ProviderKind;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::CreateArgs;
use crate::cloudinit::DockerSource;
use crate::config::Config;
use crate::error::usage;
use crate::site::{self, DnsService, DomainArg, Tls};
use crate::trial::Trial;
use crate::validate;

/// What a kind of host offers by default (`hosts::Host::defaults`).
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Server type for `--size cpu`.
    pub cpu: String,
    /// Server type for `--size gpu`; Err holds the reason and the fix when there is none.
    pub gpu: Result<String, String>,
    pub image: String,
    pub location: Option<String>,
    /// Whether the kind places servers in a subnet the operator names (`--subnet`).
    pub subnets: bool,
    /// Whether the kind puts a firewall in front of SSH (then `--ssh-from` matters).
    pub firewall: bool,
    /// Where Docker comes from when neither the flag nor the config says.
    pub docker_source: DockerSource,
    /// Bytes of cloud-init user-data the provider takes (0: the kind boots no user-data).
    pub user_data_limit: usize,
    /// Whether the kind takes gzipped user-data (EC2 does): then the limit holds for the gzip.
    pub user_data_gzip: bool,
    /// Whether the kind's hosts have an address the internet reaches (a CA can validate a name
    /// pointing at it); an existing host's is also judged by its `--host`.
    pub public_address: bool,
}

/// The plan's policy: client data is gone within 24 hours of the trial's end, whether or not
/// the operator's teardown ran (the VM's own timer wipes it then).
pub const WIPE_GRACE_S: i64 = 24 * 3600;

/// A create, fully decided.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: String,
    pub kind: ProviderKind,
    /// What was asked for: cpu, gpu or a provider type.
    pub size: String,
    pub gpu: bool,
    pub server_type: String,
    pub location: Option<String>,
    /// `--subnet` (kinds with `Defaults::subnets` only).
    pub subnet: Option<String>,
    pub image: String,
    pub expires: OffsetDateTime,
    pub domain: Option<String>,
    /// `--domain auto`: the wildcard DNS service the name goes under once the IPv4 is known.
    pub domain_auto: Option<String>,
    pub tls: Tls,
    /// `--dns`: make the domain's record at this service.
    pub dns: Option<DnsService>,
    /// CIDRs (`auto` already replaced by the operator's address).
    pub ssh_from: Vec<String>,
    /// PEM texts of extra CAs the host should trust.
    pub trusted_cas: Vec<String>,
    pub docker_source: DockerSource,
    /// The trial's earlier record, when this create resumes one.
    pub prior: Option<Trial>,
    pub existing: ExistingHostArgs,
    pub dry_run: bool,
}

/// `--provider ssh`: where the host is and how to log in (checked by that kind of host).
#[derive(Debug, Clone, Default)]
pub struct ExistingHostArgs {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity: Option<PathBuf>,
    pub host_key: Option<PathBuf>,
    pub remote_dir: Option<String>,
}

impl CreateRequest {
    pub fn expires_unix(&self) -> i64 {
        self.expires.unix_timestamp()
    }
    pub fn expires_rfc3339(&self) -> String {
        self.expires.format(&Rfc3339).unwrap_or_default()
    }
    /// The form systemd's OnCalendar takes.
    pub fn expires_systemd(&self) -> String {
        self.systemd_at(self.expires_unix())
    }
    /// Any instant in the form systemd's OnCalendar takes.
    pub fn systemd_at(&self, unix: i64) -> String {
        crate::timefmt::systemd_calendar(unix)
    }
}

/// The provider a create goes to: the flag, else munero.toml, else a usage error.
pub fn provider_kind(args: &CreateArgs, cfg: &Config) -> Result<ProviderKind> {
    args.provider.or(cfg.provider).ok_or_else(|| {
        usage("--provider is required (hetzner|aws|local|ssh), or set `provider` in munero.toml")
    })
}

/// The `--ssh-from` values before `auto` is looked up: flags, else the record's, else config,
/// else `auto`.
pub fn ssh_from_inputs(args: &CreateArgs, prior: Option<&Trial>, cfg: &Config) -> Vec<String> {
    let prior_from = prior.map(|t| t.ssh_from.clone()).unwrap_or_default();
    let v = if !args.ssh_from.is_empty() {
        args.ssh_from.clone()
    } else if !prior_from.is_empty() {
        prior_from
    } else {
        cfg.ssh_from.clone()
    };
    if v.is_empty() {
        vec!["auto".to_string()]
    } else {
        v
    }
}

/// Everything else: validated, merged, the expiry computed. `ssh_from` is the resolved CIDR list;
/// `notes` collects what people should hear (a kept expiry).
pub fn create_request(
    args: &CreateArgs,
    kind: ProviderKind,
    prior: Option<Trial>,
    cfg: &Config,
    defaults: &Defaults,
    now: OffsetDateTime,
    ssh_from: Vec<String>,
    notes: &mut Vec<String>,
) -> Result<CreateRequest> {
    let name = args.trial.clone();
    validate::trial_name(&name)?;
    if let Some(t) = &prior {
        if t.provider != kind {
            return Err(usage(format!(
                "trial {name} already exists on provider {}; destroy it first or choose another name",
                t.provider
            )));
        }
    }
    let was = |f: fn(&Trial) -> Option<String>| prior.as_ref().and_then(f).filter(|v| !v.is_empty());

    let size = args.size.clone().or_else(|| was(|t| Some(t.size.clone()))).unwrap_or_else(|| "cpu".to_string());
    let server_type = match size.as_str() {
        "cpu" => defaults.cpu.clone(),
        "gpu" => defaults.gpu.clone().map_err(usage)?,
        other => {
            validate::token("--size", other)?;
            other.to_string()
        }
    };
    // The kind's GPU type asked for by name gets the GPU cloud-init as `--size gpu` does.
    // (Only a type named by --size: an existing host's defaults name the same placeholder for
    // cpu and gpu, and `--size cpu` must stay a CPU trial.)
    let gpu = size == "gpu" || (size != "cpu" && defaults.gpu.as_deref() == Ok(server_type.as_str()));
    let location = args.location.clone().or_else(|| was(|t| t.location.clone())).or_else(|| defaults.location.clone());
    if let Some(l) = &location {
        validate::token("--location", l)?;
    }
    let subnet = args.subnet.clone().or_else(|| was(|t| t.subnet.clone()));
    if let Some(s) = &subnet {
        if !defaults.subnets {
            return Err(usage(format!("--subnet is for --provider aws (a VPC subnet id); a {kind} trial's server has no subnet to choose")));
        }
        validate::subnet(s)?;
    }
    let image = args.image.clone().or_else(|| was(|t| Some(t.image.clone()))).unwrap_or_else(|| defaults.image.clone());
    // What an image may be named is the host's business (a cloud's image name, a local file).

    let mut expires = match (&args.expires, args.days.or(cfg.days)) {
        (Some(e), _) => validate::expires(e, now)?,
        (None, d) => now + time::Duration::days(validate::days(d.unwrap_or(validate::DEFAULT_DAYS))?),
    };
    expires = expires.replace_nanosecond(0).unwrap_or(expires);
    // A resumed trial keeps the expiry it was created with: its resources already carry it.
    if let Some(t) = prior.as_ref().filter(|t| t.expires_unix > 0) {
        if t.expires_unix != expires.unix_timestamp() && (args.days.is_some() || args.expires.is_some()) {
            notes.push(format!("note: trial {name} exists; keeping its expiry {} (set when it was first created)", t.expires));
        }
        expires = OffsetDateTime::from_unix_timestamp(t.expires_unix).unwrap_or(expires);
    }

    let site = site_request(args, kind, prior.as_ref(), cfg, defaults, &name, notes)?;
    let ca_paths = if args.trusted_ca.is_empty() { cfg.trusted_ca.clone() } else { args.trusted_ca.clone() };
    let trusted_cas = ca_paths.iter().map(|p| validate::trusted_ca(p)).collect::<Result<Vec<_>>>()?;
    let prior_docker = match was(|t| Some(t.docker_source.clone())).as_deref() {
        Some("distro") => Some(DockerSource::Distro),
        Some("upstream") => Some(DockerSource::Upstream),
        _ => None,
    };
    let docker_source = args.docker_source.or(prior_docker).or(cfg.docker_source).unwrap_or(defaults.docker_source);
    let h = &args.ssh;
    Ok(CreateRequest {
        name,
        kind,
        size,
        gpu,
        server_type,
        location,
        subnet,
        image,
        expires,
        domain: site.domain,
        domain_auto: site.domain_auto,
        tls: site.tls,
        dns: site.dns,
        ssh_from,
        trusted_cas,
        docker_source,
        prior,
        existing: ExistingHostArgs {
            host: h.host.clone(),
            port: h.port,
            user: h.user.clone(),
            identity: h.identity.clone(),
            host_key: h.host_key.clone(),
            remote_dir: h.remote_dir.clone(),
        },
        dry_run: args.dry_run,
    })
}

struct SiteRequest {
    domain: Option<String>,
    domain_auto: Option<String>,
    tls: Tls,
    dns: Option<DnsService>,
}

/// The site's name and certificate source: the flags, else the record's, else munero.toml, else
/// an auto name where the host has a public address and Caddy's own CA where it has none.
fn site_request(
    args: &CreateArgs,
    kind: ProviderKind,
    prior: Option<&Trial>,
    cfg: &Config,
    defaults: &Defaults,
    name: &str,
    notes: &mut Vec<String>,
) -> Result<SiteRequest> {
    let tls_flag = args.tls.or(args.acme_staging.then_some(Tls::AcmeStaging));
    let base = cfg.auto_domain_base.clone().unwrap_or_else(|| site::DEFAULT_AUTO_BASE.to_string());
    // An existing host given by address: public or not is known now. Given by name, its
    // address is not known here, so no name can be derived from it.
    let host_ip = args.ssh.host.as_deref().and_then(|h| h.parse::<Ipv4Addr>().ok());
    let (public, why_not) = match kind {
        ProviderKind::Ssh => match (&args.ssh.host, host_ip) {
            (_, Some(ip)) if site::is_public(ip) => (true, String::new()),
            (_, Some(ip)) => (false, format!("the host's address {ip} is not reachable from the internet")),
            (Some(h), None) => (false, format!("the host is given by name ({h}), not by its IPv4 address")),
            (None, None) => (false, "the host has no address yet".into()),
        },
        _ if defaults.public_address => (true, String::new()),
        _ => (false, format!("a {kind} host has no address the internet reaches")),
    };

    let (domain, domain_auto) = match args.domain.as_deref().map(DomainArg::parse) {
        Some(DomainArg::Auto) if !public => {
            return Err(usage(format!(
                "--domain auto needs a public IPv4 address, and {why_not}: give --domain with a name that points at the host, \
                 or --tls internal (the browser then warns)"
            )))
        }
        Some(DomainArg::Auto) => (None, Some(base)),
        Some(DomainArg::Name(n)) => (Some(validate::fqdn(&n)?), None),
        None => match prior {
            // A resumed trial keeps the name it was created with.
            Some(t) => (t.domain.clone().filter(|d| !d.is_empty()), t.domain_auto.clone()),
            None => match &cfg.domain_pattern {
                Some(p) => (Some(validate::fqdn(&p.replace("{trial}", name))?), None),
                None if tls_flag.or(cfg.tls) == Some(Tls::Internal) || !public => (None, None),
                None => (None, Some(base)),
            },
        },
    };
    let named = domain.is_some() || domain_auto.is_some();
    let tls = tls_flag
        .or(prior.and_then(|t| t.tls))
        .or(cfg.tls.filter(|t| named || !t.is_acme()))
        .unwrap_or(if named { Tls::Acme } else { Tls::Internal });
    if tls.is_acme() && !named {
        return Err(usage(format!(
            "--tls {tls} needs a name a CA can check, and {why_not}: give --domain NAME pointing at the host, or --tls internal"
        )));
    }
    if !named && prior.is_none() {
        notes.push(format!(
            "note: the trial is served at its address with Caddy's own certificate ({why_not}); the client's browser will warn"
        ));
    }
    let dns = args.dns.or(prior.and_then(|t| t.dns));
    if let Some(service) = dns {
        if domain.is_none() {
            return Err(usage(
                "--dns makes the record of a name you own: give --domain NAME (an auto name needs no record)".to_string(),
            ));
        }
        // The record is made with the provider's own connection and token.
        if service == DnsService::Hetzner && kind != ProviderKind::Hetzner {
            return Err(usage(format!(
                "--dns hetzner makes records for --provider hetzner trials; for a {kind} host create the A record yourself \
                 (deploy checks it and says which)"
            )));
        }
    }
    Ok(SiteRequest { domain, domain_auto, tls, dns })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> CreateArgs {
        let mut v = vec!["munero-infra", "create", "acme"];
        v.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(v).command {
            crate::cli::Command::Create(a) => a,
            _ => unreachable!(),
        }
    }

    fn hetzner() -> Defaults {
        Defaults {
            cpu: "cpx41".into(),
            gpu: Err("no GPU here".into()),
            image: "ubuntu-24.04".into(),
            location: Some("nbg1".into()),
            subnets: false,
            firewall: true,
            docker_source: DockerSource::Upstream,
            user_data_limit: 32 * 1024,
            user_data_gzip: false,
            public_address: true,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn resolve(a: &CreateArgs, prior: Option<Trial>) -> Result<CreateRequest> {
        create_request(a, ProviderKind::Hetzner, prior, &Config::default(), &hetzner(), now(), vec![], &mut vec![])
    }

    fn site_of(kind: ProviderKind, extra: &[&str], cfg: &Config) -> Result<(Option<String>, Option<String>, Tls, Vec<String>)> {
        let defaults = Defaults { public_address: kind != ProviderKind::Local, ..hetzner() };
        let mut notes = vec![];
        let r = create_request(&args(extra), kind, None, cfg, &defaults, now(), vec![], &mut notes)?;
        Ok((r.domain, r.domain_auto, r.tls, notes))
    }

    #[test]
    fn a_host_with_a_public_address_gets_an_auto_name_and_a_trusted_certificate_by_default() {
        let cfg = Config::default();
        let (d, auto, tls, notes) = site_of(ProviderKind::Hetzner, &[], &cfg).unwrap();
        assert_eq!((d, auto.as_deref(), tls, notes.len()), (None, Some("sslip.io"), Tls::Acme, 0));
        let nip = Config { auto_domain_base: Some("nip.io".into()), ..Config::default() };
        assert_eq!(site_of(ProviderKind::Hetzner, &["--domain", "auto"], &nip).unwrap().1.as_deref(), Some("nip.io"));
        let (_, auto, tls, _) = site_of(ProviderKind::Hetzner, &["--acme-staging"], &cfg).unwrap();
        assert_eq!((auto.as_deref(), tls), (Some("sslip.io"), Tls::AcmeStaging));
        let (d, auto, tls, _) = site_of(ProviderKind::Hetzner, &["--domain", "Trial.Example.com"], &cfg).unwrap();
        assert_eq!((d.as_deref(), auto, tls), (Some("trial.example.com"), None, Tls::Acme));
        // Rehearsals: Caddy's own CA and no name.
        let (d, auto, tls, notes) = site_of(ProviderKind::Hetzner, &["--tls", "internal"], &cfg).unwrap();
        assert_eq!((d, auto, tls), (None, None, Tls::Internal));
        assert!(notes[0].contains("browser will warn"), "{notes:?}");
    }

    #[test]
    fn a_host_the_internet_cannot_reach_is_served_with_caddys_own_ca_and_auto_is_refused() {
        let cfg = Config::default();
        let (d, auto, tls, notes) = site_of(ProviderKind::Local, &[], &cfg).unwrap();
        assert_eq!((d, auto, tls), (None, None, Tls::Internal));
        assert!(notes[0].contains("no address the internet reaches"), "{notes:?}");
        let e = site_of(ProviderKind::Local, &["--domain", "auto"], &cfg).unwrap_err().to_string();
        assert!(e.contains("--domain auto needs a public IPv4") && e.contains("--tls internal"), "{e}");
        let e = site_of(ProviderKind::Local, &["--tls", "acme"], &cfg).unwrap_err().to_string();
        assert!(e.contains("--tls acme needs a name"), "{e}");

        let private = ["--host", "10.0.0.7"];
        let (_, auto, tls, notes) = site_of(ProviderKind::Ssh, &private, &cfg).unwrap();
        assert_eq!((auto, tls), (None, Tls::Internal));
        assert!(notes[0].contains("10.0.0.7 is not reachable from the internet"), "{notes:?}");
        let (_, auto, tls, _) = site_of(ProviderKind::Ssh, &["--host", "95.217.1.20"], &cfg).unwrap();
        assert_eq!((auto.as_deref(), tls), (Some("sslip.io"), Tls::Acme));
        let e = site_of(ProviderKind::Ssh, &["--host", "box.example.net", "--domain", "auto"], &cfg).unwrap_err().to_string();
        assert!(e.contains("given by name (box.example.net)"), "{e}");
    }

    #[test]
    fn a_resumed_trial_keeps_its_name_and_certificate_source() {
        let legacy = Trial { name: "acme".into(), provider: ProviderKind::Hetzner, ..Trial::default() };
        let r = resolve(&args(&[]), Some(legacy)).unwrap();
        assert_eq!((r.domain, r.domain_auto, r.tls), (None, None, Tls::Internal), "a record from before keeps its own CA");
        let auto = Trial { name: "acme".into(), provider: ProviderKind::Hetzner, domain_auto: Some("nip.io".into()), tls: Some(Tls::AcmeStaging), ..Trial::default() };
        let r = resolve(&args(&[]), Some(auto)).unwrap();
        assert_eq!((r.domain_auto.as_deref(), r.tls), (Some("nip.io"), Tls::AcmeStaging));
    }

    #[test]
    fn only_gpu_or_the_kinds_gpu_type_by_name_makes_a_gpu_trial() {
        let gpu_of = |d: &Defaults, extra: &[&str]| {
            create_request(&args(extra), ProviderKind::Ssh, None, &Config::default(), d, now(), vec![], &mut vec![]).unwrap().gpu
        };
        // An existing host's defaults name one placeholder for both sizes.
        let existing = Defaults { cpu: "existing host".into(), gpu: Ok("existing host".into()), ..hetzner() };
        assert!(!gpu_of(&existing, &[]));
        assert!(!gpu_of(&existing, &["--size", "cpu"]));
        assert!(gpu_of(&existing, &["--size", "gpu"]));
        let aws = Defaults { cpu: "c6i.2xlarge".into(), gpu: Ok("g4dn.xlarge".into()), ..hetzner() };
        assert!(gpu_of(&aws, &["--size", "g4dn.xlarge"]));
        assert!(!gpu_of(&aws, &["--size", "c6i.4xlarge"]));
    }

    #[test]
    fn provider_defaults_fill_what_no_flag_gives() {
        let r = resolve(&args(&[]), None).unwrap();
        assert_eq!((r.server_type.as_str(), r.image.as_str(), r.location.as_deref()), ("cpx41", "ubuntu-24.04", Some("nbg1")));
        assert_eq!(r.expires_unix(), 1_800_000_000 + 14 * 86_400);
        let e = resolve(&args(&["--size", "gpu"]), None).unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), 2);
        assert!(e.to_string().contains("no GPU here"));
    }

    #[test]
    fn a_resumed_create_keeps_the_records_values_over_defaults_and_its_first_expiry() {
        let prior = Trial {
            name: "acme".into(),
            size: "cx22".into(),
            location: Some("hel1".into()),
            image: "debian-12".into(),
            expires_unix: 1_800_000_500,
            expires: "then".into(),
            ..Trial::default()
        };
        let mut notes = vec![];
        let a = args(&["--days", "3"]);
        let r = create_request(&a, ProviderKind::Hetzner, Some(prior), &Config::default(), &hetzner(), now(), vec![], &mut notes).unwrap();
        assert_eq!((r.server_type.as_str(), r.location.as_deref(), r.image.as_str()), ("cx22", Some("hel1"), "debian-12"));
        assert_eq!(r.expires_unix(), 1_800_000_500);
        assert!(notes[0].contains("keeping its expiry then"), "{notes:?}");
    }

    #[test]
    fn a_trial_on_another_provider_is_refused() {
        let prior = Trial { name: "acme".into(), provider: ProviderKind::Ssh, ..Trial::default() };
        let e = resolve(&args(&[]), Some(prior)).unwrap_err();
        assert!(e.to_string().contains("already exists on provider ssh"), "{e}");
    }

    #[test]
    fn ssh_from_comes_from_flags_then_record_then_config_then_auto() {
        let cfg = Config { ssh_from: vec!["198.51.100.0/24".into()], ..Config::default() };
        assert_eq!(ssh_from_inputs(&args(&[]), None, &Config::default()), ["auto"]);
        assert_eq!(ssh_from_inputs(&args(&[]), None, &cfg), ["198.51.100.0/24"]);
        let prior = Trial { ssh_from: vec!["203.0.113.7/32".into()], ..Trial::default() };
        assert_eq!(ssh_from_inputs(&args(&[]), Some(&prior), &cfg), ["203.0.113.7/32"]);
        assert_eq!(ssh_from_inputs(&args(&["--ssh-from", "192.0.2.1/32"]), Some(&prior), &cfg), ["192.0.2.1/32"]);
    }
}
