//! The kinds of host a trial can live on, behind one lifecycle interface. This is the only place
//! that maps a provider kind to its implementation; commands hold a `Box<dyn Host>`.

pub mod cloud;
pub mod existing;
pub mod lifecycle;
pub mod local;
pub mod provision;
pub mod resources;

use anyhow::Result;
use munero_provider::ProviderKind;

use crate::error::usage;
use crate::trial::Trial;
pub use lifecycle::Host;

const NO_HCLOUD_TOKEN: &str = "HCLOUD_TOKEN is not set: export an API token of the Hetzner Cloud project (read & write)";

/// The Hetzner token from the environment (never printed).
fn hetzner_token() -> Option<String> {
    std::env::var("HCLOUD_TOKEN").ok().filter(|t| !t.trim().is_empty())
}

/// Whether AWS counts as configured for `status` and `teardown`: credentials or a profile named
/// in the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE, the container
/// credential URIs) or MUNERO_AWS=1 (an instance role or a default profile, which the
/// environment does not show). Only the environment is read: no file, no network.
pub fn aws_configured() -> bool {
    const VARS: [&str; 5] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ];
    let set = |k: &str| std::env::var(k).map(|v| !v.trim().is_empty()).unwrap_or(false);
    VARS.iter().any(|k| set(k)) || std::env::var("MUNERO_AWS").as_deref() == Ok("1")
}

/// The host for `kind`. Without credentials a dry run still gets one that plans from local
/// records and defaults; anything else names the missing credential (exit 2).
pub fn connect(kind: ProviderKind, dry_run: bool) -> Result<Box<dyn Host>> {
    connect_at(kind, None, &[], dry_run)
}

/// The host for a trial's commands: at a provider with regions, the region its location names.
pub fn connect_trial(t: &Trial, dry_run: bool) -> Result<Box<dyn Host>> {
    connect_at(t.provider, t.location.as_deref(), &[], dry_run)
}

/// `connect`, at `location` (`create --location`, or a trial's), also listing the regions of
/// `also` (status and teardown: every region a trial record names).
pub fn connect_at(kind: ProviderKind, location: Option<&str>, also: &[String], dry_run: bool) -> Result<Box<dyn Host>> {
    match kind {
        ProviderKind::Hetzner => {
            let api: Option<Box<dyn munero_provider::Provider>> = match hetzner_token() {
                Some(token) => Some(Box::new(munero_hetzner::HetznerProvider::from_env(&token)?)),
                None if dry_run => None,
                None => {
                    return Err(usage(NO_HCLOUD_TOKEN))
                }
            };
            Ok(Box::new(cloud::CloudHost::new(kind, api, cloud::hetzner_defaults, "HCLOUD_TOKEN", NO_HCLOUD_TOKEN)))
        }
        ProviderKind::Ssh => Ok(Box::new(existing::ExistingHost)),
        ProviderKind::Local => Ok(Box::new(local::LocalHost)),
        ProviderKind::Aws => {
            // The full chain (profiles, SSO, instance roles) is tried on the first call; a dry
            // run without credentials in the environment plans from records and defaults.
            let api: Option<Box<dyn munero_provider::Provider>> = if dry_run && !aws_configured() {
                None
            } else {
                Some(Box::new(munero_aws::AwsProvider::in_region(location.and_then(munero_aws::region_of), also)))
            };
            Ok(Box::new(cloud::CloudHost::new(kind, api, cloud::aws_defaults, "AWS credentials", munero_aws::NO_CREDENTIALS)))
        }
    }
}

/// Every kind of host that `status` and `teardown` can ask: the clouds with credentials in the
/// environment, and existing hosts (their local records are all there is). AWS is asked in its
/// default region, every region a trial record names, and those of `MUNERO_AWS_REGIONS`
/// (comma-separated: for a scheduled teardown on a machine that holds no records).
pub fn configured(records: &[Trial]) -> Result<Vec<Box<dyn Host>>> {
    let mut out: Vec<Box<dyn Host>> = Vec::new();
    if hetzner_token().is_some() {
        out.push(connect(ProviderKind::Hetzner, false)?);
    }
    if aws_configured() {
        out.push(connect_at(ProviderKind::Aws, None, &aws_regions(records), false)?);
    }
    out.push(connect(ProviderKind::Ssh, false)?);
    out.push(connect(ProviderKind::Local, false)?);
    Ok(out)
}

/// The AWS regions beyond the default one that status and teardown list.
fn aws_regions(records: &[Trial]) -> Vec<String> {
    let named = std::env::var("MUNERO_AWS_REGIONS").unwrap_or_default();
    let mut out: Vec<String> = named.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect();
    out.extend(records.iter().filter(|t| t.provider == ProviderKind::Aws).filter_map(|t| t.location.as_deref().and_then(munero_aws::region_of)));
    out.sort();
    out.dedup();
    out
}

/// Whether any kind with a provider API has credentials (teardown needs one or a record).
pub fn any_cloud_configured() -> bool {
    hetzner_token().is_some() || aws_configured()
}
