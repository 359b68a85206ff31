//! Instances: find by tag, create (idempotent, failing over between availability zones when one
//! has no capacity), wait running, terminate.

use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, Instance, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType, ResourceType, ShutdownBehavior, VolumeType,
};
use munero_provider::{is_managed, is_managed_for, ProviderError, Result, ServerInfo, ServerSpec, LABEL_TRIAL};
use sha2::{Digest, Sha256};

use crate::error::{self, sdk};
use crate::regional::Regional;
use crate::{image, tags, userdata, ROOT_GB};

/// States an instance can be in and still be a trial's (terminated ones linger for an hour).
const LIVE: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];
/// Tries of RunInstances in one subnet when the answer was lost (5xx, timeout).
const RUN_ATTEMPTS: u32 = 3;

/// The RunInstances ClientToken: the same trial, type, image and subnet give the same token, so
/// AWS answers a retry with the first instance instead of making a second one (<= 64 chars).
pub fn client_token(trial: &str, expires: &str, instance_type: &str, image: &str, subnet: &str) -> String {
    let h = Sha256::digest(format!("{trial}\n{expires}\n{instance_type}\n{image}\n{subnet}"));
    format!("munero-{}", &hex::encode(h)[..48])
}

pub(crate) fn info(i: &Instance) -> ServerInfo {
    let labels = tags::to_labels(i.tags());
    let ipv6 = i.network_interfaces().iter().flat_map(|n| n.ipv6_addresses()).find_map(|a| a.ipv6_address().map(str::to_string));
    ServerInfo {
        id: i.instance_id().unwrap_or_default().to_string(),
        name: tags::name_of(&labels).or_else(|| labels.get(LABEL_TRIAL).map(String::as_str)).unwrap_or_default().to_string(),
        ipv4: i.public_ip_address().map(str::to_string),
        ipv6,
        status: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
        server_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        location: i.placement().and_then(|p| p.availability_zone()).map(str::to_string),
        labels,
    }
}

impl Regional {
    /// Live instances carrying `munero-managed=true` (and the trial's tag when given).
    pub(crate) async fn instances_managed(&self, trial: Option<&str>) -> Result<Vec<ServerInfo>> {
        let c = self.client().await?;
        let mut filters = tags::managed_filters(trial);
        filters.push(aws_sdk_ec2::types::Filter::builder().name("instance-state-name").set_values(Some(LIVE.map(String::from).to_vec())).build());
        let mut pages = c.describe_instances().set_filters(Some(filters)).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk("DescribeInstances", e))?;
            out.extend(page.reservations().iter().flat_map(|r| r.instances()).map(info).filter(|s| is_managed(&s.labels)));
        }
        Ok(out)
    }

    pub(crate) async fn instance_of_trial(&self, trial: &str) -> Result<Option<ServerInfo>> {
        let mut mine: Vec<ServerInfo> =
            self.instances_managed(Some(trial)).await?.into_iter().filter(|s| is_managed_for(&s.labels, trial)).collect();
        if mine.len() > 1 {
            let ids: Vec<String> = mine.iter().map(|s| s.id.clone()).collect();
            return Err(ProviderError::Other(format!(
                "trial {trial} has {} instances ({}); expected one: destroy the trial and create it again",
                mine.len(),
                ids.join(", ")
            )));
        }
        Ok(mine.pop())
    }

    /// One instance by id; None when AWS no longer knows it.
    pub(crate) async fn instance(&self, id: &str) -> Result<Option<Instance>> {
        let c = self.client().await?;
        match c.describe_instances().instance_ids(id).send().await {
            Ok(r) => Ok(r.reservations().iter().flat_map(|r| r.instances()).next().cloned()),
            Err(e) => match sdk("DescribeInstances", e) {
                e if e.is_not_found() => Ok(None),
                e => Err(e),
            },
        }
    }

    /// The ids of the volumes and network interfaces attached to an instance.
    pub(crate) async fn instance_parts(&self, id: &str) -> Result<Vec<String>> {
        let Some(i) = self.instance(id).await? else { return Ok(Vec::new()) };
        let vols = i.block_device_mappings().iter().filter_map(|b| b.ebs().and_then(|e| e.volume_id()));
        let enis = i.network_interfaces().iter().filter_map(|n| n.network_interface_id());
        Ok(vols.chain(enis).map(str::to_string).collect())
    }

    pub(crate) async fn instance_type_check(&self, t: &str) -> Result<()> {
        let ec2 = self.ec2().await?;
        let r = ec2.client.describe_instance_types().instance_types(InstanceType::from(t)).send().await;
        let unknown = || {
            ProviderError::Invalid(format!(
                "instance type {t:?} is not offered in {}: use --size cpu ({}), --size gpu ({}) or a type the region has \
                 (aws ec2 describe-instance-types), or a region that has it (--location <region>)",
                ec2.region,
                crate::CPU_TYPE,
                crate::GPU_TYPE
            ))
        };
        match r {
            Ok(out) if out.instance_types().iter().any(|i| i.instance_type().map(|x| x.as_str()) == Some(t)) => Ok(()),
            Ok(_) => Err(unknown()),
            Err(e) => match sdk("DescribeInstanceTypes", e) {
                ProviderError::Invalid(_) => Err(unknown()),
                ProviderError::Api { code, .. } if code.starts_with("InvalidInstanceType") => Err(unknown()),
                other => Err(other),
            },
        }
    }

    pub(crate) async fn instance_create(&self, spec: &ServerSpec) -> Result<ServerInfo> {
        let trial = spec.labels.get(LABEL_TRIAL).cloned().unwrap_or_default();
        // A create whose answer was lost may have made the instance: it carries the trial's tags.
        if let Some(s) = self.instance_of_trial(&trial).await? {
            return Ok(s);
        }
        let ec2 = self.ec2().await?;
        let img = self.resolve_image(&spec.image).await?;
        let user_data = userdata::encode(&spec.user_data)?;
        let subnets = self.launch_subnets(spec.location.as_deref(), spec.subnet.as_deref()).await?;
        let mut full: Vec<String> = Vec::new();
        for (subnet, az) in &subnets {
            match self.run_in(spec, &trial, &img, subnet, &user_data).await {
                Ok(i) => {
                    if !full.is_empty() {
                        tracing::warn!(
                            "no {} capacity in {}; the instance was made in {az} instead",
                            spec.server_type,
                            full.join(", ")
                        );
                    }
                    return Ok(info(&i));
                }
                Err(ProviderError::Conflict(m)) if m.starts_with("InsufficientInstanceCapacity") || m.starts_with("Unsupported") => {
                    tracing::warn!("{az}: {m}; trying the next availability zone");
                    full.push(az.clone());
                }
                Err(e) => return Err(e),
            }
        }
        Err(error::no_capacity(&spec.server_type, &ec2.region, &full))
    }

    /// RunInstances in one subnet. SDK retries are off here: after a lost answer the instance
    /// is looked for by tag before trying again (moto, like a proxy, may not honour the token).
    async fn run_in(&self, spec: &ServerSpec, trial: &str, img: &Image, subnet: &str, user_data: &str) -> Result<Instance> {
        let c = self.client().await?;
        let expires = spec.labels.get(munero_provider::LABEL_EXPIRES).cloned().unwrap_or_default();
        let token = client_token(trial, &expires, &spec.server_type, &img.id, subnet);
        let root = BlockDeviceMapping::builder()
            .device_name(&img.root_device)
            .ebs(
                EbsBlockDevice::builder()
                    .volume_size(ROOT_GB)
                    .volume_type(VolumeType::Gp3)
                    .encrypted(true)
                    .delete_on_termination(true)
                    .build(),
            )
            .build();
        let metadata = InstanceMetadataOptionsRequest::builder()
            .http_endpoint(InstanceMetadataEndpointState::Enabled)
            .http_tokens(HttpTokensState::Required)
            .http_put_response_hop_limit(1)
            .build();
        // The interface asks for a public IPv4 itself: a subnet that is not a default one does
        // not map one on launch, and the trial is reached on it.
        let nic = InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .subnet_id(subnet)
            .set_groups(Some(spec.firewall_ids.clone()))
            .associate_public_ip_address(true)
            .delete_on_termination(true)
            .build();
        let mut last = String::new();
        for attempt in 1..=RUN_ATTEMPTS {
            let r = c
                .run_instances()
                .client_token(&token)
                .image_id(&img.id)
                .instance_type(InstanceType::from(spec.server_type.as_str()))
                .min_count(1)
                .max_count(1)
                .network_interfaces(nic.clone())
                .set_key_name(spec.ssh_key_ids.first().cloned())
                .user_data(user_data)
                .block_device_mappings(root.clone())
                .metadata_options(metadata.clone())
                .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
                .set_tag_specifications(Some(tags::specs(
                    &[ResourceType::Instance, ResourceType::Volume, ResourceType::NetworkInterface],
                    &spec.labels,
                    Some(&spec.name),
                )))
                .customize()
                .config_override(aws_sdk_ec2::config::Config::builder().retry_config(RetryConfig::disabled()))
                .send()
                .await;
            match r {
                Ok(out) => {
                    return out.instances().first().cloned().ok_or_else(|| ProviderError::Other("RunInstances answered no instance".into()))
                }
                Err(e) => match sdk("RunInstances", e) {
                    ProviderError::Api { code, message, .. } if code == "VcpuLimitExceeded" => {
                        return Err(ProviderError::Other(error::quota_message(&spec.server_type, &message)))
                    }
                    ProviderError::Api { code, message, .. } if code == "Unsupported" => {
                        return Err(ProviderError::Conflict(format!("Unsupported: {message}")))
                    }
                    e @ (ProviderError::Api { status: 500.., .. } | ProviderError::Transport(_) | ProviderError::Timeout(_)) => {
                        tracing::warn!("creating the instance: {e}; checking whether it exists before retrying");
                        last = e.to_string();
                        tokio::time::sleep(self.poll().interval * attempt).await;
                        if let Some(s) = self.instance_of_trial(trial).await? {
                            if let Some(i) = self.instance(&s.id).await? {
                                return Ok(i);
                            }
                        }
                    }
                    e => return Err(e),
                },
            }
        }
        Err(ProviderError::RetriesExhausted { attempts: RUN_ATTEMPTS, last: format!("creating the instance: {last}") })
    }

    pub(crate) async fn instance_wait_running(&self, id: &str) -> Result<ServerInfo> {
        self.poll()
            .until(
                || format!("instance {id} is not running with a public IPv4"),
                || async {
                    let i = self.instance(id).await?.ok_or_else(|| ProviderError::NotFound { kind: "instance".into(), id: id.into() })?;
                    let s = info(&i);
                    match i.state().and_then(|s| s.name()) {
                        Some(InstanceStateName::Running) if s.ipv4.is_some() => Ok(Some(s)),
                        Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown) => Err(ProviderError::Other(format!(
                            "instance {id} is {} before it ran ({}); see its console output in the EC2 console",
                            s.status,
                            i.state_reason().and_then(|r| r.message()).unwrap_or("no reason given")
                        ))),
                        _ => Ok(None),
                    }
                },
            )
            .await
    }

    /// Terminate and wait until AWS says terminated (the security group is in use until then).
    pub(crate) async fn instance_terminate(&self, id: &str) -> Result<()> {
        let c = self.client().await?;
        c.terminate_instances().instance_ids(id).send().await.map_err(|e| sdk("TerminateInstances", e))?;
        self.poll()
            .until(
                || format!("instance {id} is not terminated"),
                || async {
                    Ok(match self.instance(id).await? {
                        None => Some(()),
                        Some(i) if i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Terminated) => Some(()),
                        Some(_) => None,
                    })
                },
            )
            .await
    }

    /// The image to launch: an `ami-...` as given, else the newest Canonical Ubuntu 24.04 amd64.
    pub(crate) async fn resolve_image(&self, wanted: &str) -> Result<Image> {
        let c = self.client().await?;
        let region = &self.ec2().await?.region;
        let req = c.describe_images();
        let req = if wanted.starts_with("ami-") {
            req.image_ids(wanted)
        } else if wanted == image::DEFAULT_IMAGE {
            req.owners(image::CANONICAL)
                .filters(aws_sdk_ec2::types::Filter::builder().name("name").set_values(Some(image::NAME_PATTERNS.map(String::from).to_vec())).build())
                .filters(tags::filter("state", "available"))
        } else {
            return Err(ProviderError::Invalid(format!(
                "--image {wanted:?}: on AWS give an AMI id (ami-...) or leave --image out for Ubuntu 24.04 ({})",
                image::DEFAULT_IMAGE
            )));
        };
        let out = match req.send().await {
            Ok(o) => o,
            Err(e) => match sdk("DescribeImages", e) {
                e if e.is_not_found() => {
                    return Err(ProviderError::Invalid(format!("--image {wanted}: no such AMI in {region}; AMIs are per region")))
                }
                e => return Err(e),
            },
        };
        let cands: Vec<image::Candidate> = out
            .images()
            .iter()
            .map(|i| image::Candidate {
                id: i.image_id().unwrap_or_default().into(),
                name: i.name().unwrap_or_default().into(),
                created: i.creation_date().unwrap_or_default().into(),
                arch: i.architecture().map(|a| a.as_str().to_string()).unwrap_or_default(),
            })
            .collect();
        let pick = if wanted.starts_with("ami-") { cands.iter().find(|c| c.id == wanted) } else { image::newest(&cands) };
        let Some(pick) = pick else {
            return Err(ProviderError::Invalid(if wanted.starts_with("ami-") {
                format!("--image {wanted}: no such AMI in {region}; AMIs are per region")
            } else {
                format!("no Ubuntu 24.04 amd64 image from Canonical ({}) found in {region}; pass --image ami-...", image::CANONICAL)
            }));
        };
        let root_device = out
            .images()
            .iter()
            .find(|i| i.image_id() == Some(pick.id.as_str()))
            .and_then(|i| i.root_device_name())
            .unwrap_or("/dev/sda1")
            .to_string();
        Ok(Image { id: pick.id.clone(), root_device })
    }
}

pub(crate) struct Image {
    pub id: String,
    pub root_device: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_client_token_is_stable_per_trial_and_subnet_and_fits_64_chars() {
        let a = super::client_token("acme", "1800000000", "g4dn.xlarge", "ami-1", "subnet-a");
        assert_eq!(a, super::client_token("acme", "1800000000", "g4dn.xlarge", "ami-1", "subnet-a"));
        assert_ne!(a, super::client_token("acme", "1800000000", "g4dn.xlarge", "ami-1", "subnet-b"));
        assert_ne!(a, super::client_token("other", "1800000000", "g4dn.xlarge", "ami-1", "subnet-a"));
        assert!(a.len() <= 64);
    }
}
