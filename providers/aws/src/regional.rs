//! The provider in one region: the client made on the first call (loading the chain is async,
//! and a dry run may never call), and the `Provider` calls of that region.

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_ec2::config::ProvideCredentials;
use aws_sdk_ec2::Client;
use munero_provider::{
    Ensured, FirewallSpec, Labels, Lookup, Provider, ProviderError, Resource, ResourceKind, Result, ServerInfo, ServerSpec,
    SshKeySpec,
};
use tokio::sync::OnceCell;

use crate::{error, PollPolicy, NO_CREDENTIALS, NO_REGION};

pub(crate) struct Ec2 {
    pub client: Client,
    pub region: String,
}

/// The provider in one region: every call goes to that region's endpoint.
pub(crate) struct Regional {
    /// The region asked for (`--location`, or one a trial record names); None: the chain's.
    want: Option<String>,
    pub(crate) ec2: OnceCell<Ec2>,
    poll: PollPolicy,
}

impl Regional {
    pub(crate) fn new(want: Option<String>) -> Self {
        Regional { want, ec2: OnceCell::new(), poll: PollPolicy::from_env() }
    }

    /// The client, made on first use: the chain is loaded once and the credentials resolved
    /// up front, so "no credentials" is one clear error rather than a failure inside a call.
    pub(crate) async fn ec2(&self) -> Result<&Ec2> {
        self.ec2
            .get_or_try_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(r) = &self.want {
                    loader = loader.region(aws_config::Region::new(r.clone()));
                }
                let conf = loader.load().await;
                let creds = conf.credentials_provider().ok_or_else(|| ProviderError::Invalid(NO_CREDENTIALS.into()))?;
                if let Err(e) = creds.provide_credentials().await {
                    return Err(ProviderError::Invalid(format!("{NO_CREDENTIALS} ({e})")));
                }
                let region = conf.region().map(|r| r.to_string()).ok_or_else(|| ProviderError::Invalid(NO_REGION.into()))?;
                Ok(Ec2 { client: Client::new(&conf), region })
            })
            .await
    }

    /// The region asked for, if any.
    pub(crate) fn wanted(&self) -> Option<&str> {
        self.want.as_deref()
    }

    /// The region's name (the chain's when none was asked for).
    pub(crate) async fn region(&self) -> Result<String> {
        Ok(self.ec2().await?.region.clone())
    }

    pub(crate) async fn client(&self) -> Result<&Client> {
        Ok(&self.ec2().await?.client)
    }

    pub(crate) fn poll(&self) -> &PollPolicy {
        &self.poll
    }
}

fn refuse(kind: ResourceKind, id: &str) -> ProviderError {
    ProviderError::Invalid(format!("{kind} {id} does not carry munero-managed=true; not touching it"))
}

#[async_trait]
impl Provider for Regional {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn check_server_type(&self, server_type: &str) -> Result<()> {
        self.instance_type_check(server_type).await
    }

    async fn check_placement(&self, image: &str, location: Option<&str>) -> Result<()> {
        self.placement_check(image, location).await
    }

    async fn check_subnet(&self, subnet: &str, location: Option<&str>) -> Result<()> {
        self.launch_subnets(location, Some(subnet)).await.map(|_| ())
    }

    async fn check_access(&self) -> Result<Option<i64>> {
        let c = self.client().await?;
        c.describe_availability_zones().send().await.map_err(|e| error::sdk("DescribeAvailabilityZones", e))?;
        Ok(None)
    }

    async fn ensure_ssh_key(&self, spec: &SshKeySpec) -> Result<Ensured> {
        self.key_pair_ensure(spec).await
    }

    async fn ensure_firewall(&self, spec: &FirewallSpec) -> Result<Ensured> {
        self.security_group_ensure(spec).await
    }

    /// The security group is given to RunInstances; a resumed instance gets it added.
    async fn attach_firewall(&self, firewall_id: &str, server_id: &str) -> Result<()> {
        self.security_group_attach(firewall_id, server_id).await
    }

    async fn find_server(&self, trial: &str) -> Result<Option<ServerInfo>> {
        self.instance_of_trial(trial).await
    }

    async fn create_server(&self, spec: &ServerSpec) -> Result<ServerInfo> {
        self.instance_create(spec).await
    }

    async fn wait_running(&self, id: &str) -> Result<ServerInfo> {
        self.instance_wait_running(id).await
    }

    async fn set_labels(&self, kind: ResourceKind, id: &str, labels: &Labels) -> Result<()> {
        if !munero_provider::is_managed(labels) {
            return Err(ProviderError::Invalid(format!("new labels for {kind} {id} lack munero-managed=true")));
        }
        match self.current_labels(kind, id).await? {
            Some(cur) if munero_provider::is_managed(&cur) => {
                self.retag(id, &cur, labels).await?;
                if kind == ResourceKind::Server {
                    // The root volume and interface were tagged with the instance: they move with it.
                    for part in self.instance_parts(id).await? {
                        self.retag(&part, &cur, labels).await?;
                    }
                }
                Ok(())
            }
            Some(_) => Err(refuse(kind, id)),
            None => Err(ProviderError::NotFound { kind: kind.to_string(), id: id.to_string() }),
        }
    }

    async fn create_snapshot(&self, server_id: &str, description: &str, labels: &Labels) -> Result<Resource> {
        self.image_create(server_id, description, labels).await
    }

    async fn lookup(&self, kind: ResourceKind, id: &str) -> Result<Lookup> {
        self.lookup_fresh(kind, id).await
    }

    async fn list_managed_servers(&self) -> Result<Vec<ServerInfo>> {
        self.instances_managed(None).await
    }

    async fn list_managed_resources(&self) -> Result<Vec<Resource>> {
        let (sgs, keys, storage) = tokio::join!(self.security_groups_managed(), self.key_pairs_managed(), self.storage_managed());
        let mut out = sgs?;
        out.extend(keys?);
        out.extend(storage?);
        Ok(out)
    }

    async fn delete_resource(&self, kind: ResourceKind, id: &str) -> Result<()> {
        let labels = match self.current_labels(kind, id).await? {
            None => return Ok(()),
            Some(l) => l,
        };
        if !munero_provider::is_managed(&labels) {
            return Err(refuse(kind, id));
        }
        let r = match kind {
            ResourceKind::Server => self.instance_terminate(id).await,
            ResourceKind::Firewall => self.security_group_delete(id).await,
            ResourceKind::SshKey => self.key_pair_delete(id).await,
            ResourceKind::Snapshot | ResourceKind::Volume | ResourceKind::PrimaryIp => self.storage_delete(kind, id).await,
            ResourceKind::DnsRecord => Err(ProviderError::Invalid(format!("aws keeps no DNS records here ({id})"))),
        };
        match r {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}
