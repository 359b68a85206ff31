//! Which provider implementation serves a `--provider` value.

use anyhow::Result;
use munero_provider::Provider;

use crate::cli::ProviderKind;
use crate::error::usage;

/// The Hetzner token from the environment (never printed).
pub fn hetzner_token() -> Option<String> {
    std::env::var("HCLOUD_TOKEN").ok().filter(|t| !t.trim().is_empty())
}

/// Refuse providers that are not built yet (exit 2).
pub fn ensure_available(kind: ProviderKind) -> Result<()> {
    match kind {
        ProviderKind::Hetzner => Ok(()),
        ProviderKind::Aws => Err(usage("--provider aws is not available yet; use --provider hetzner")),
        ProviderKind::Local => Err(usage("--provider local is not available yet; use --provider hetzner")),
        // An existing host: no provider API; create/destroy go to crate::ssh_provider.
        ProviderKind::Ssh => Ok(()),
    }
}

/// Build the provider client; errors (exit 2) name the missing credential.
pub fn connect(kind: ProviderKind) -> Result<Box<dyn Provider>> {
    ensure_available(kind)?;
    match kind {
        ProviderKind::Hetzner => {
            let token = hetzner_token().ok_or_else(|| {
                usage("HCLOUD_TOKEN is not set: export an API token of the Hetzner Cloud project (read & write)")
            })?;
            Ok(Box::new(munero_hetzner::HetznerProvider::from_env(&token)?))
        }
        // Unreachable: refused by ensure_available above.
        ProviderKind::Ssh => Err(usage("--provider ssh has no provider API: it registers an existing host (create --host ... --host-key ...)")),
        ProviderKind::Aws | ProviderKind::Local => ensure_available(kind).map(|_| unreachable!()),
    }
}

/// Every provider that has credentials in the environment (for status and teardown).
pub fn configured() -> Result<Vec<Box<dyn Provider>>> {
    let mut out: Vec<Box<dyn Provider>> = Vec::new();
    if hetzner_token().is_some() {
        out.push(connect(ProviderKind::Hetzner)?);
    }
    Ok(out)
}

/// Parse a provider name from a trial record.
pub fn kind_of(name: &str) -> Option<ProviderKind> {
    match name {
        "hetzner" => Some(ProviderKind::Hetzner),
        "aws" => Some(ProviderKind::Aws),
        "local" => Some(ProviderKind::Local),
        "ssh" => Some(ProviderKind::Ssh),
        _ => None,
    }
}
