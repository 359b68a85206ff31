//! cloud-init user-data: Tera templates from `cloud-init/` (compiled into the binary, so it
//! works outside a checkout), rendered by a pure function, size-checked per provider.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tera::Tera;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerSource {
    /// Docker Engine + Compose v2 from Docker's apt repository.
    Upstream,
    /// The distribution's docker.io + compose + buildx packages.
    Distro,
}

impl DockerSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            DockerSource::Upstream => "upstream",
            DockerSource::Distro => "distro",
        }
    }
}

pub const TEMPLATES: &[(&str, &str)] = &[
    ("user-data.yaml.tera", include_str!("../cloud-init/user-data.yaml.tera")),
    ("hardening.yaml.tera", include_str!("../cloud-init/hardening.yaml.tera")),
    ("docker.yaml.tera", include_str!("../cloud-init/docker.yaml.tera")),
    ("nvidia.yaml.tera", include_str!("../cloud-init/nvidia.yaml.tera")),
    ("expiry.yaml.tera", include_str!("../cloud-init/expiry.yaml.tera")),
];

/// Hetzner: 32 KiB of user-data.
pub const HETZNER_LIMIT: usize = 32 * 1024;
/// EC2: 16 KB of (base64-decoded) user-data.
pub const EC2_LIMIT: usize = 16 * 1024;

pub const REDACTED_HOST_KEY: &str = "<redacted: ed25519 host private key, kept 0600 in the trial store>";

/// Everything the templates read.
#[derive(Debug, Clone, Serialize)]
pub struct UserDataInput {
    pub trial: String,
    pub provider: String,
    pub size: String,
    pub gpu: bool,
    /// "upstream" or "distro".
    pub docker_source: String,
    pub expires_unix: i64,
    pub expires_rfc3339: String,
    /// systemd OnCalendar form, e.g. "2026-12-09 01:00:00 UTC".
    pub expires_systemd: String,
    /// The on-box kill path: seconds after the expiry when the VM wipes its client data and
    /// powers off by itself, and that instant in systemd's form.
    pub wipe_grace_s: i64,
    pub wipe_at_systemd: String,
    pub domain: Option<String>,
    pub deploy_user: String,
    /// The trial's login key (OpenSSH public key line).
    pub authorized_key: String,
    pub host_public_key: String,
    /// Secret: never printed; see [`render_redacted`].
    #[serde(skip)]
    pub host_private_key: String,
    /// PEM CA certificates to trust.
    pub trusted_cas: Vec<String>,
}

fn engine() -> Result<Tera> {
    let mut t = Tera::default();
    t.add_raw_templates(TEMPLATES.iter().copied()).context("loading the cloud-init templates")?;
    t.register_filter("indent", indent_filter);
    t.autoescape_on(vec![]);
    Ok(t)
}

fn indent_filter(v: &tera::Value, args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let s = v.as_str().ok_or_else(|| tera::Error::msg("indent: expects a string"))?;
    let w = args.get("width").and_then(|w| w.as_u64()).unwrap_or(2) as usize;
    let pad = " ".repeat(w);
    let out: Vec<String> =
        s.trim_end_matches('\n').lines().map(|l| if l.is_empty() { String::new() } else { format!("{pad}{l}") }).collect();
    Ok(tera::Value::String(out.join("\n")))
}

fn render_with(input: &UserDataInput, host_private_key: &str) -> Result<String> {
    let mut ctx = tera::Context::from_serialize(input).context("building the template context")?;
    ctx.insert("host_private_key", host_private_key);
    let out = engine()?.render("user-data.yaml.tera", &ctx).map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        anyhow::anyhow!("rendering cloud-init: {msg}")
    })?;
    // Collapse runs of blank lines left by template tags.
    let mut cleaned = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        cleaned.push_str(line.trim_end());
        cleaned.push('\n');
    }
    Ok(cleaned)
}

/// The real user-data, with the host private key. Pure: no I/O.
pub fn render(input: &UserDataInput) -> Result<String> {
    if input.host_private_key.trim().is_empty() {
        bail!("rendering cloud-init: no host private key");
    }
    render_with(input, &input.host_private_key)
}

/// The same user-data with the host private key replaced by a placeholder: safe to print.
/// Rendered without the secret in the context, so it cannot leak.
pub fn render_redacted(input: &UserDataInput) -> Result<String> {
    render_with(input, REDACTED_HOST_KEY)
}

/// The user-data of a server made again from a snapshot. The disk holds everything else, but to
/// cloud-init a new server is a new instance: it would delete the host keys and make new ones,
/// breaking the pin. This puts the trial's pinned key back instead. Pure: no I/O.
pub fn render_restore(host_private_key: &str, host_public_key: &str) -> Result<String> {
    if host_private_key.trim().is_empty() || host_public_key.trim().is_empty() {
        bail!("rendering the restore user-data: the trial's host key is missing");
    }
    let indented: Vec<String> = host_private_key.trim_end().lines().map(|l| format!("    {l}")).collect();
    Ok(format!(
        "#cloud-config\n# Made from a munero snapshot: serve the trial's pinned host key again.\n\
         ssh_deletekeys: true\nssh_genkeytypes: [ed25519]\nssh_keys:\n  ed25519_private: |\n{}\n  ed25519_public: {}\n",
        indented.join("\n"),
        host_public_key.trim()
    ))
}

/// As [`check_size`], for a provider that takes gzipped user-data: what must fit is the gzip
/// when the text itself does not.
pub fn check_size_gzipped(limit: usize, user_data: &str) -> Result<()> {
    if user_data.len() <= limit {
        return Ok(());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, user_data.as_bytes())?;
    let n = gz.finish()?.len();
    if n > limit {
        bail!(
            "the rendered user-data is {} bytes ({n} gzipped), over the provider's limit of {limit} bytes; pass fewer --trusted-ca files",
            user_data.len()
        );
    }
    Ok(())
}

/// Check the rendered size against the provider's limit (each kind of host knows its own).
pub fn check_size(limit: usize, user_data: &str) -> Result<()> {
    if user_data.len() > limit {
        bail!(
            "the rendered user-data is {} bytes, over the provider's limit of {limit} bytes; \
             pass fewer --trusted-ca files",
            user_data.len()
        );
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// One fixture builder for user-data inputs.
    pub fn fixture_input(provider: &str, gpu: bool, docker_source: &str) -> UserDataInput {
        let host = crate::keys::generate_ed25519("host").unwrap();
        let login = crate::keys::generate_ed25519("login").unwrap();
        UserDataInput {
            trial: "acme-demo".into(),
            provider: provider.into(),
            size: if gpu { "gpu".into() } else { "cpu".into() },
            gpu,
            docker_source: docker_source.into(),
            expires_unix: 1_800_000_000,
            expires_rfc3339: "2027-01-15T08:00:00Z".into(),
            expires_systemd: "2027-01-15 08:00:00 UTC".into(),
            wipe_grace_s: 86_400,
            wipe_at_systemd: "2027-01-16 08:00:00 UTC".into(),
            domain: Some("acme.trials.example.com".into()),
            deploy_user: "deploy".into(),
            authorized_key: login.public_openssh,
            host_public_key: host.public_openssh,
            host_private_key: host.private_openssh,
            trusted_cas: vec![],
        }
    }

    fn variants() -> Vec<(String, bool, String)> {
        let mut v = vec![];
        for p in ["hetzner", "aws"] {
            for g in [false, true] {
                for d in ["upstream", "distro"] {
                    v.push((p.to_string(), g, d.to_string()));
                }
            }
        }
        v
    }

    #[test]
    fn every_variant_fits_its_provider_limit() {
        for (p, g, d) in variants() {
            let ud = render(&fixture_input(&p, g, &d)).unwrap();
            assert!(ud.starts_with("#cloud-config\n"));
            let limit = if p == "aws" { EC2_LIMIT } else { HETZNER_LIMIT };
            check_size(limit, &ud).unwrap_or_else(|e| panic!("{p} gpu={g} {d}: {e}"));
        }
    }

    #[test]
    fn limits_are_per_provider() {
        assert_eq!(HETZNER_LIMIT, 32768);
        assert_eq!(EC2_LIMIT, 16384);
        let big = "x".repeat(20_000);
        assert!(check_size(HETZNER_LIMIT, &big).is_ok());
        assert!(check_size(EC2_LIMIT, &big).unwrap_err().to_string().contains("16384"));
        // EC2 takes gzip: repetitive text over the limit fits once gzipped; noise does not.
        assert!(check_size_gzipped(EC2_LIMIT, &big).is_ok());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: String = (0..40_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect();
        assert!(check_size_gzipped(EC2_LIMIT, &noise).unwrap_err().to_string().contains("gzipped"));
    }

    #[test]
    fn user_data_holds_the_injected_host_key_and_hardening() {
        let i = fixture_input("hetzner", false, "upstream");
        let ud = render(&i).unwrap();
        assert!(ud.contains("ssh_genkeytypes: [ed25519]"));
        assert!(ud.contains("ssh_deletekeys: true"));
        assert!(ud.contains("ssh_pwauth: false"));
        assert!(ud.contains("disable_root: true"));
        assert!(ud.contains("manage_etc_hosts: true"));
        assert!(ud.contains(&format!("ed25519_public: {}", i.host_public_key)));
        assert!(ud.contains("    -----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(ud.contains(&i.authorized_key));
        assert!(ud.contains("download.docker.com"));
        assert!(ud.contains("docker-compose-plugin"));
        assert!(ud.contains("/var/lib/munero/ready"));
        assert!(ud.contains("OnCalendar=2027-01-16 08:00:00 UTC"));
        // Containers and non-root users cannot fetch the user-data from the metadata service.
        assert!(ud.contains("-d $m -m owner ! --uid-owner 0 -j REJECT"));
        assert!(ud.contains("iptables -w -I DOCKER-USER -d $m -j REJECT"));
        assert!(ud.contains("[systemctl, enable, --now, munero-metadata-guard.service]"));
        assert!(!ud.contains("nvidia"));
        assert!(!ud.contains("power_state"));
    }

    #[test]
    fn distro_docker_uses_the_distribution_packages() {
        let ud = render(&fixture_input("hetzner", false, "distro")).unwrap();
        assert!(ud.contains("apt-get install -y -q docker.io \"$compose\" docker-buildx"));
        assert!(!ud.contains("download.docker.com"));
    }

    #[test]
    fn gpu_installs_driver_toolkit_configures_runtime_and_reboots() {
        let ud = render(&fixture_input("aws", true, "upstream")).unwrap();
        assert!(ud.contains("nvidia-container-toolkit"));
        assert!(ud.contains("nvidia-ctk runtime configure --runtime=docker"));
        assert!(ud.contains("mode: reboot"));
        assert!(ud.contains("munero-gpu-ready.service"));
    }

    #[test]
    fn redacted_user_data_never_contains_the_host_private_key() {
        let i = fixture_input("hetzner", true, "upstream");
        let red = render_redacted(&i).unwrap();
        let body: Vec<&str> = i.host_private_key.lines().filter(|l| !l.starts_with("-----")).collect();
        for line in body {
            assert!(!red.contains(line), "private key material leaked");
        }
        assert!(!red.contains("BEGIN OPENSSH PRIVATE KEY"));
        assert!(red.contains(REDACTED_HOST_KEY));
        assert!(red.contains(&i.host_public_key));
    }

    #[test]
    fn trusted_cas_go_into_ca_certs() {
        let mut i = fixture_input("hetzner", false, "upstream");
        i.trusted_cas = vec!["-----BEGIN CERTIFICATE-----\nMIIBxTCCAWugAwIBAgIU\n-----END CERTIFICATE-----\n".into()];
        let ud = render(&i).unwrap();
        assert!(ud.contains("ca_certs:\n  trusted:\n    - |\n      -----BEGIN CERTIFICATE-----\n      MIIBxTCCAWugAwIBAgIU\n"));
    }

    #[test]
    fn rendering_needs_the_host_key() {
        let mut i = fixture_input("hetzner", false, "upstream");
        i.host_private_key.clear();
        assert!(render(&i).is_err());
    }

    #[test]
    fn restore_user_data_puts_the_pinned_host_key_back_and_nothing_else() {
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\nBBBB\n-----END OPENSSH PRIVATE KEY-----\n";
        let ud = render_restore(private, "ssh-ed25519 AAAAC3Nz host").unwrap();
        assert!(ud.starts_with("#cloud-config\n"), "{ud}");
        assert!(ud.contains("  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    AAAA\n    BBBB\n    -----END"), "{ud}");
        assert!(ud.contains("  ed25519_public: ssh-ed25519 AAAAC3Nz host\n"), "{ud}");
        assert!(!ud.contains("runcmd") && !ud.contains("users:"), "{ud}");
        assert!(render_restore("", "ssh-ed25519 AAAA").is_err());
    }
}
