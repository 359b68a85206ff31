//! AWS EC2 provider over the official SDK.
//!
//! Credentials come from the standard chain (env, profiles incl. SSO, instance roles), the
//! region from `--location` (a region or one of its zones), else `AWS_REGION` or the profile, the
//! endpoint from `AWS_ENDPOINT_URL` when set. One `Regional` per region holds the client; the
//! `AwsProvider` routes each call to the region that holds the resource.
//! Every resource is tagged at creation (TagSpecifications), and every delete re-reads the tags
//! and refuses what does not carry `munero-managed=true`.

pub mod error;
pub mod image;
mod instances;
mod network;
mod regional;
mod regions;
mod storage;
pub mod tags;
pub mod userdata;

use std::time::Duration;

use munero_provider::{ProviderError, Result};

pub use image::DEFAULT_IMAGE;
pub use regions::{region_of, AwsProvider};

/// `--size cpu`: 8 vCPU / 16 GB.
pub const CPU_TYPE: &str = "c6i.2xlarge";
/// `--size gpu`: one NVIDIA T4 (16 GB).
pub const GPU_TYPE: &str = "g4dn.xlarge";
/// Root volume size in GiB (the models and images need room).
pub const ROOT_GB: i32 = 100;

pub const NO_CREDENTIALS: &str = "no AWS credentials found: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
     or AWS_PROFILE=<profile> (run `aws sso login --profile <profile>` first for SSO), or run on an instance with a role";
pub const NO_REGION: &str = "no AWS region: pass --location <region> (e.g. eu-central-1), export AWS_REGION, or set region in the profile";

/// How state changes are polled (`MUNERO_POLL_MS`, `MUNERO_POLL_TIMEOUT_S` as for Hetzner).
#[derive(Debug, Clone)]
pub struct PollPolicy {
    pub interval: Duration,
    pub max_interval: Duration,
    pub deadline: Duration,
}

impl PollPolicy {
    pub fn from_env() -> Self {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
        let mut p = PollPolicy { interval: Duration::from_secs(2), max_interval: Duration::from_secs(15), deadline: Duration::from_secs(900) };
        if let Some(ms) = env("MUNERO_POLL_MS") {
            p.interval = Duration::from_millis(ms.max(1));
            p.max_interval = p.max_interval.min(Duration::from_millis(ms.saturating_mul(10).max(1)));
        }
        if let Some(s) = env("MUNERO_POLL_TIMEOUT_S") {
            p.deadline = Duration::from_secs(s.max(1));
        }
        p
    }

    /// Poll `check` until it answers Some, growing the interval; Err(Timeout(what)) at the deadline.
    pub(crate) async fn until<T, F, Fut>(&self, what: impl Fn() -> String, mut check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let start = std::time::Instant::now();
        let mut interval = self.interval;
        loop {
            if let Some(t) = check().await? {
                return Ok(t);
            }
            if start.elapsed() > self.deadline {
                return Err(ProviderError::Timeout(format!("{} after {}s", what(), self.deadline.as_secs())));
            }
            tokio::time::sleep(interval).await;
            interval = interval.mul_f64(1.5).min(self.max_interval);
        }
    }
}
