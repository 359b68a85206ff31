//! `init [DIR]`: a commented munero.toml and an env template for a new client, so the first
//! `create` and `deploy` start from every setting with its meaning beside it.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::cli::InitArgs;
use crate::ctx::Ctx;
use crate::deploy::bundle;
use crate::error::usage;
use crate::output::Report;
use crate::store::atomic_write;

pub const CONFIG_TEMPLATE: &str = r#"# munero.toml: defaults for munero-infra; command-line flags override them.
# Read from ./munero.toml, else $XDG_CONFIG_HOME/munero-infra/munero.toml, or --config FILE.

# Where trials are created: hetzner (needs HCLOUD_TOKEN) or ssh (an existing host).
provider = "hetzner"

# Who may reach SSH on a trial: "auto" (your public address at create time) and/or CIDRs.
ssh_from = ["auto"]

# Trial lifetime in days (1..90); teardown --expired removes trials past it.
days = 14

# Where Docker comes from on a new VM: "upstream" (Docker's apt repository) or "distro".
# docker_source = "upstream"

# Extra CA certificates (PEM) the VMs should trust, e.g. behind a TLS-intercepting proxy.
# trusted_ca = ["/usr/local/share/ca-certificates/corp.crt"]

# The trial's public name; {trial} is replaced by the trial name. Without it a server with a
# public address is served under a name derived from its IPv4 (--domain auto), with a
# certificate browsers trust.
# domain_pattern = "{trial}.trials.example.com"

# The wildcard DNS service auto names live under (sslip.io, nip.io, or your own wildcard zone).
# auto_domain_base = "sslip.io"

# Certificate source when no flag says: acme, acme-staging (rehearsals) or internal.
# tls = "acme"

# Contact address for the ACME account (optional).
# acme_email = "ops@example.com"

# Slack-compatible webhook for notices (expiring soon, wiped, torn down, teardown failed); a secret.
# webhook_url = "https://hooks.slack.com/services/..."

# Where clients send feedback: named in `onboard` messages.
# feedback_email = "trials@example.com"

# Ollama model the assistant uses.
# model = "qwen2.5-coder:3b"

# Generation slower than this (tokens/s, measured by smoke) is reported with a suggestion.
# min_tokens_per_second = 8.0

# URL that answers with the caller's public address (for ssh_from "auto").
# ip_echo_url = "https://api.ipify.org"

[hetzner]
# Location: nbg1, fsn1, hel1 (EU), ash, hil (US), sin.
# location = "nbg1"
image = "ubuntu-24.04"
# Server type for --size cpu.
size_cpu = "cpx41"
"#;

fn env_template() -> String {
    format!(
        "# The client's stack settings, for `deploy --env client.env`. deploy fills in the domain, the TLS\n\
         # mode and the Basic Auth user and hash itself: leave those as they are.\n\n{}",
        bundle::env_example()
    )
}

pub fn run(_ctx: &Ctx, args: &InitArgs) -> Result<Report> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if dir.exists() && !dir.is_dir() {
        return Err(usage(format!("{} is not a directory", dir.display())));
    }
    let files: Vec<(PathBuf, String, u32)> = vec![
        (dir.join(crate::config::CONFIG_FILE), CONFIG_TEMPLATE.to_string(), 0o644),
        // The env file will hold client settings: private from the start.
        (dir.join("client.env"), env_template(), 0o600),
    ];
    let existing: Vec<String> = files.iter().filter(|f| f.0.exists()).map(|f| f.0.display().to_string()).collect();
    if !existing.is_empty() && !args.force {
        return Err(usage(format!("{} already exist(s); pass --force to replace", existing.join(", "))));
    }
    let paths: Vec<String> = files.iter().map(|f| f.0.display().to_string()).collect();
    if args.dry_run {
        return Ok(Report::new(
            json!({"ok": true, "command": "init", "dry_run": true, "files": paths}),
            format!("Would write (dry run: nothing written):\n  {}", paths.join("\n  ")),
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    for (p, text, mode) in &files {
        atomic_write(p, text.as_bytes(), *mode)?;
    }
    Ok(Report::new(
        json!({"ok": true, "command": "init", "dry_run": false, "files": paths}),
        format!("Wrote:\n  {}\nEdit them, then: munero-infra create TRIAL && munero-infra deploy TRIAL --env {}", paths.join("\n  "), files[1].0.display()),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_template_is_a_valid_config() {
        let c = crate::config::Config::parse(super::CONFIG_TEMPLATE).unwrap();
        assert_eq!(c.days, Some(14));
        assert_eq!(c.hetzner.size_cpu, "cpx41");
        // Every commented key is one the config knows.
        let uncommented: String = super::CONFIG_TEMPLATE
            .lines()
            .map(|l| l.strip_prefix("# ").filter(|r| r.contains(" = ")).unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        crate::config::Config::parse(&uncommented).unwrap();
    }
}
