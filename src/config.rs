//! Optional operator config `munero.toml`: defaults that flags override. Unknown keys are an
//! error naming the key.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use munero_provider::ProviderKind;

use crate::cloudinit::DockerSource;
use crate::error::usage;

pub const CONFIG_FILE: &str = "munero.toml";
pub const DEFAULT_IP_ECHO_URL: &str = "https://api.ipify.org";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub provider: Option<ProviderKind>,
    /// Default `--ssh-from` values (`auto` or CIDRs).
    pub ssh_from: Vec<String>,
    pub days: Option<i64>,
    pub docker_source: Option<DockerSource>,
    pub trusted_ca: Vec<PathBuf>,
    /// URL answering with the caller's public address as plain text.
    pub ip_echo_url: Option<String>,
    /// Domain pattern, `{trial}` replaced by the trial name (e.g. "{trial}.trials.example.com").
    pub domain_pattern: Option<String>,
    pub acme_email: Option<String>,
    /// Default certificate source (acme, acme-staging, internal); `--tls` overrides.
    pub tls: Option<crate::site::Tls>,
    /// The wildcard DNS service `--domain auto` names live under (default sslip.io; nip.io or
    /// the operator's own wildcard zone).
    pub auto_domain_base: Option<String>,
    pub model: Option<String>,
    /// Where notices go (expiring soon, wiped, torn down, teardown failed): a Slack-compatible
    /// incoming webhook. A secret: never printed. `MUNERO_WEBHOOK_URL` overrides it.
    pub webhook_url: Option<String>,
    /// Where clients send feedback (named in the onboarding message).
    pub feedback_email: Option<String>,
    /// Generation slower than this (tokens/s) makes smoke warn and suggest a GPU or a smaller
    /// model (default 8). `MUNERO_MIN_TOKENS_PER_S` overrides it.
    pub min_tokens_per_second: Option<f64>,
    pub hetzner: HetznerConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HetznerConfig {
    pub location: Option<String>,
    pub image: String,
    /// Server type for `--size cpu`.
    pub size_cpu: String,
}

impl Default for HetznerConfig {
    fn default() -> Self {
        HetznerConfig { location: None, image: "ubuntu-24.04".into(), size_cpu: "cpx41".into() }
    }
}

impl Config {
    /// `--config FILE` (must exist), else `./munero.toml`, else the XDG config dir, else defaults.
    pub fn load(flag: Option<&Path>) -> Result<Config> {
        if let Some(p) = flag {
            if !p.exists() {
                return Err(usage(format!("config file {} does not exist; fix the --config path", p.display())));
            }
            return Self::from_file(p);
        }
        let mut candidates = vec![PathBuf::from(CONFIG_FILE)];
        if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            candidates.push(Path::new(&x).join("munero-infra").join(CONFIG_FILE));
        } else if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            candidates.push(Path::new(&h).join(".config/munero-infra").join(CONFIG_FILE));
        }
        for c in candidates {
            if c.is_file() {
                return Self::from_file(&c);
            }
        }
        Ok(Config::default())
    }

    pub fn from_file(p: &Path) -> Result<Config> {
        let s = std::fs::read_to_string(p).map_err(|e| usage(format!("cannot read config {}: {e}", p.display())))?;
        Self::parse(&s).map_err(|e| usage(format!("config {}: {e}", p.display())))
    }

    pub fn parse(s: &str) -> Result<Config, String> {
        toml::from_str(s).map_err(|e| e.message().to_string())
    }

    /// The model-speed threshold, tokens per second.
    pub fn min_tps(&self) -> Result<f64> {
        let (v, from) = match std::env::var("MUNERO_MIN_TOKENS_PER_S").ok().filter(|s| !s.trim().is_empty()) {
            Some(s) => (s.trim().parse::<f64>().map_err(|_| usage(format!("MUNERO_MIN_TOKENS_PER_S={s:?} is not a number; give tokens per second, e.g. 8")))?, "MUNERO_MIN_TOKENS_PER_S"),
            None => (self.min_tokens_per_second.unwrap_or(crate::model_speed::DEFAULT_MIN_TOKENS_PER_S), "min_tokens_per_second"),
        };
        if !(v.is_finite() && v >= 0.0) {
            return Err(usage(format!("{from} = {v} is not a speed; give tokens per second, 0 or more (default 8)")));
        }
        Ok(v)
    }

    pub fn ip_echo_url(&self) -> String {
        std::env::var("MUNERO_IP_ECHO_URL")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| self.ip_echo_url.clone())
            .unwrap_or_else(|| DEFAULT_IP_ECHO_URL.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let e = Config::parse("provider = \"hetzner\"\nsize_gpu = \"x\"\n").unwrap_err();
        assert!(e.contains("size_gpu"), "{e}");
        let e = Config::parse("[hetzner]\nimage = \"debian-13\"\nlocaton = \"nbg1\"\n").unwrap_err();
        assert!(e.contains("locaton"), "{e}");
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("provider = \"hetzner\"\ndocker_source = \"distro\"\n[hetzner]\nsize_cpu = \"ccx33\"\n").unwrap();
        assert_eq!(c.provider, Some(ProviderKind::Hetzner));
        assert_eq!(c.docker_source, Some(DockerSource::Distro));
        assert_eq!(c.hetzner.size_cpu, "ccx33");
        assert_eq!(c.hetzner.image, "ubuntu-24.04");
        assert_eq!(Config::default().hetzner.size_cpu, "cpx41");
    }
}
