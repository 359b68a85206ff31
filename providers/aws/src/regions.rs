//! Trials in several regions behind one provider: creates go to the home region (`--location`,
//! else the chain's), a call about a resource goes to the region it was listed or made in, and
//! listings (status, teardown) cover the home region and every region a trial record names.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use munero_provider::{
    Ensured, FirewallSpec, Labels, Lookup, Provider, Resource, ResourceKind, Result, ServerInfo, ServerSpec, SshKeySpec,
};

use crate::regional::Regional;

/// The region of an AWS location: `eu-central-1` of itself, of `eu-central-1a` and of a local
/// zone like `us-west-2-lax-1a`; None for anything else (a Hetzner location, a typo).
pub fn region_of(location: &str) -> Option<String> {
    let parts: Vec<&str> = location.split('-').collect();
    let alpha = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    if parts.len() < 3 || parts[0].len() != 2 || !alpha(parts[0]) {
        return None;
    }
    let i = parts.iter().position(|p| p.bytes().next().is_some_and(|b| b.is_ascii_digit()))?;
    if i < 2 || !parts[1..i].iter().all(|p| alpha(p)) {
        return None;
    }
    let digits: String = parts[i].chars().take_while(char::is_ascii_digit).collect();
    let rest = &parts[i][digits.len()..];
    // A zone adds one letter (or, for local zones, more dash-separated parts).
    if rest.len() > 1 || !alpha(rest) && !rest.is_empty() {
        return None;
    }
    Some(format!("{}-{digits}", parts[..i].join("-")))
}

pub struct AwsProvider {
    /// [0] is the home region; the rest are only listed (and reached by the ids listed there).
    regions: Vec<Regional>,
    /// Resource id -> index in `regions` of the region it was listed or made in.
    at: Mutex<HashMap<String, usize>>,
}

impl AwsProvider {
    /// The chain's region only.
    pub fn from_env() -> Self {
        Self::in_region(None, &[])
    }

    /// Home in `region` (None: the chain's), also listing `also` (duplicates are dropped once
    /// the home region's name is known).
    pub fn in_region(region: Option<String>, also: &[String]) -> Self {
        let mut regions = vec![Regional::new(region.clone())];
        for r in also {
            if Some(r) != region.as_ref() && !regions.iter().any(|x| x.wanted() == Some(r.as_str())) {
                regions.push(Regional::new(Some(r.clone())));
            }
        }
        AwsProvider { regions, at: Mutex::new(HashMap::new()) }
    }

    fn home(&self) -> &Regional {
        &self.regions[0]
    }

    /// Index of the region that holds `id` (as listed or made); the home region when not seen yet.
    fn index_of(&self, id: &str) -> usize {
        self.at.lock().map(|m| m.get(id).copied().unwrap_or(0)).unwrap_or(0)
    }

    fn of(&self, id: &str) -> &Regional {
        &self.regions[self.index_of(id)]
    }

    fn seen(&self, i: usize, ids: impl IntoIterator<Item = String>) {
        if let Ok(mut m) = self.at.lock() {
            for id in ids {
                m.insert(id, i);
            }
        }
    }

    /// One listing over every listed region, each id remembered with its region.
    async fn across<'a, T, F, Fut>(&'a self, list: F, id: fn(&T) -> String) -> Result<Vec<T>>
    where
        F: Fn(&'a Regional) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>>>,
    {
        let mut out = Vec::new();
        for (i, r) in self.listed().await? {
            let got = list(r).await?;
            self.seen(i, got.iter().map(id));
            out.extend(got);
        }
        Ok(out)
    }

    /// The regions to list: home, then each other one whose name differs from home's.
    async fn listed(&self) -> Result<Vec<(usize, &Regional)>> {
        let home = self.home().region().await?;
        Ok(self.regions.iter().enumerate().filter(|(i, r)| *i == 0 || r.wanted() != Some(home.as_str())).collect())
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn check_server_type(&self, server_type: &str) -> Result<()> {
        self.home().check_server_type(server_type).await
    }

    async fn check_placement(&self, image: &str, location: Option<&str>) -> Result<()> {
        self.home().check_placement(image, location).await
    }

    async fn check_subnet(&self, subnet: &str, location: Option<&str>) -> Result<()> {
        self.home().check_subnet(subnet, location).await
    }

    async fn check_access(&self) -> Result<Option<i64>> {
        self.home().check_access().await
    }

    async fn ensure_ssh_key(&self, spec: &SshKeySpec) -> Result<Ensured> {
        let e = self.home().ensure_ssh_key(spec).await?;
        self.seen(0, [e.id.clone()]);
        Ok(e)
    }

    async fn ensure_firewall(&self, spec: &FirewallSpec) -> Result<Ensured> {
        let e = self.home().ensure_firewall(spec).await?;
        self.seen(0, [e.id.clone()]);
        Ok(e)
    }

    async fn attach_firewall(&self, firewall_id: &str, server_id: &str) -> Result<()> {
        self.of(server_id).attach_firewall(firewall_id, server_id).await
    }

    /// Home first (a create resumes there), then the other listed regions.
    async fn find_server(&self, trial: &str) -> Result<Option<ServerInfo>> {
        for (i, r) in self.listed().await? {
            if let Some(s) = r.find_server(trial).await? {
                self.seen(i, [s.id.clone()]);
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    async fn create_server(&self, spec: &ServerSpec) -> Result<ServerInfo> {
        let s = self.home().create_server(spec).await?;
        self.seen(0, [s.id.clone()]);
        Ok(s)
    }

    async fn wait_running(&self, id: &str) -> Result<ServerInfo> {
        self.of(id).wait_running(id).await
    }

    async fn set_labels(&self, kind: ResourceKind, id: &str, labels: &Labels) -> Result<()> {
        self.of(id).set_labels(kind, id, labels).await
    }

    async fn create_snapshot(&self, server_id: &str, description: &str, labels: &Labels) -> Result<Resource> {
        let i = self.index_of(server_id);
        let r = self.regions[i].create_snapshot(server_id, description, labels).await?;
        self.seen(i, [r.id.clone()]);
        Ok(r)
    }

    async fn lookup(&self, kind: ResourceKind, id: &str) -> Result<Lookup> {
        self.of(id).lookup(kind, id).await
    }

    async fn list_managed_servers(&self) -> Result<Vec<ServerInfo>> {
        self.across(|r| r.list_managed_servers(), |s| s.id.clone()).await
    }

    async fn list_managed_resources(&self) -> Result<Vec<Resource>> {
        self.across(|r| r.list_managed_resources(), |s| s.id.clone()).await
    }

    async fn delete_resource(&self, kind: ResourceKind, id: &str) -> Result<()> {
        self.of(id).delete_resource(kind, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::region_of;

    #[test]
    fn regions_come_from_regions_zones_and_local_zones_only() {
        let r = |s: &str| region_of(s);
        assert_eq!(r("eu-central-1").as_deref(), Some("eu-central-1"));
        assert_eq!(r("eu-central-1a").as_deref(), Some("eu-central-1"));
        assert_eq!(r("us-west-2-lax-1a").as_deref(), Some("us-west-2"));
        assert_eq!(r("us-gov-west-1").as_deref(), Some("us-gov-west-1"));
        assert_eq!(r("ap-southeast-2c").as_deref(), Some("ap-southeast-2"));
        for bad in ["fsn1", "nbg1-dc3", "eu-central", "eu-central-1ab", "EU-central-1", "e-central-1", "eu-1", ""] {
            assert_eq!(r(bad), None, "{bad}");
        }
    }
}
