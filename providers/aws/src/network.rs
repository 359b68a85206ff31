//! Key pairs, security groups and where instances go (the default VPC's subnets).

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, ResourceType};
use munero_provider::{
    is_managed, is_managed_for, Ensured, FirewallRule, FirewallSpec, Protocol, ProviderError, Resource, ResourceKind, Result,
    SshKeySpec, LABEL_TRIAL,
};

use crate::error::sdk;
use crate::regional::Regional;
use crate::tags;

/// Ingress permissions for the rules: one per rule, its CIDRs split into v4 and v6 ranges.
pub fn permissions(rules: &[FirewallRule]) -> Result<Vec<IpPermission>> {
    rules
        .iter()
        .map(|r| {
            let (from, to) = port_range(r)?;
            let (v6, v4): (Vec<&String>, Vec<&String>) = r.source_ips.iter().partition(|c| c.contains(':'));
            Ok(IpPermission::builder()
                .ip_protocol(r.protocol.to_string())
                .from_port(from)
                .to_port(to)
                .set_ip_ranges(Some(v4.iter().map(|c| IpRange::builder().cidr_ip(*c).description(&r.description).build()).collect()))
                .set_ipv6_ranges(Some(
                    v6.iter().map(|c| Ipv6Range::builder().cidr_ipv6(*c).description(&r.description).build()).collect(),
                ))
                .build())
        })
        .collect()
}

fn port_range(r: &FirewallRule) -> Result<(i32, i32)> {
    if r.protocol == Protocol::Icmp {
        return Ok((-1, -1));
    }
    let p = r.port.as_deref().unwrap_or_default();
    let bad = || ProviderError::Invalid(format!("firewall rule {r}: port {p:?} is not a port or range"));
    let (a, b) = p.split_once('-').unwrap_or((p, p));
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

pub(crate) struct Subnet {
    pub vpc: String,
    pub zone: String,
}

impl Regional {
    pub(crate) async fn key_pair_ensure(&self, spec: &SshKeySpec) -> Result<Ensured> {
        let trial = spec.labels.get(LABEL_TRIAL).cloned().unwrap_or_default();
        if let Some(k) = self.key_pairs_managed().await?.into_iter().find(|k| k.name == spec.name && is_managed_for(&k.labels, &trial)) {
            return Ok(Ensured { id: k.id, created: false });
        }
        let c = self.client().await?;
        let out = c
            .import_key_pair()
            .key_name(&spec.name)
            .public_key_material(aws_sdk_ec2::primitives::Blob::new(spec.public_key.trim().as_bytes()))
            .set_tag_specifications(Some(tags::specs(&[ResourceType::KeyPair], &spec.labels, None)))
            .send()
            .await
            .map_err(|e| match sdk("ImportKeyPair", e) {
                ProviderError::Api { code, .. } if code == "InvalidKeyPair.Duplicate" => ProviderError::Conflict(format!(
                    "a key pair named {} exists without the trial's munero tags; it is not ours: delete or rename it, or choose another trial name",
                    spec.name
                )),
                e => e,
            })?;
        Ok(Ensured { id: out.key_pair_id().unwrap_or_default().to_string(), created: true })
    }

    pub(crate) async fn key_pairs_managed(&self) -> Result<Vec<Resource>> {
        let c = self.client().await?;
        let out =
            c.describe_key_pairs().set_filters(Some(tags::managed_filters(None))).send().await.map_err(|e| sdk("DescribeKeyPairs", e))?;
        Ok(out
            .key_pairs()
            .iter()
            .map(|k| Resource {
                kind: ResourceKind::SshKey,
                id: k.key_pair_id().unwrap_or_default().into(),
                name: k.key_name().unwrap_or_default().into(),
                labels: tags::to_labels(k.tags()),
            })
            .filter(|r| is_managed(&r.labels))
            .collect())
    }

    /// Deleted by name, which every EC2 implementation takes (moto ignores KeyPairId); the name
    /// is read for this id first, so it is the key the tags were checked on.
    pub(crate) async fn key_pair_delete(&self, id: &str) -> Result<()> {
        let c = self.client().await?;
        let out = c
            .describe_key_pairs()
            .filters(tags::filter("key-pair-id", id))
            .send()
            .await
            .map_err(|e| sdk("DescribeKeyPairs", e))?;
        let Some(name) = out.key_pairs().iter().find(|k| k.key_pair_id() == Some(id)).and_then(|k| k.key_name()) else {
            return Ok(());
        };
        c.delete_key_pair().key_name(name).send().await.map_err(|e| sdk("DeleteKeyPair", e)).map(|_| ())
    }

    pub(crate) async fn security_groups_managed(&self) -> Result<Vec<Resource>> {
        let c = self.client().await?;
        let mut pages = c.describe_security_groups().set_filters(Some(tags::managed_filters(None))).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk("DescribeSecurityGroups", e))?;
            out.extend(page.security_groups().iter().map(|g| Resource {
                kind: ResourceKind::Firewall,
                id: g.group_id().unwrap_or_default().into(),
                name: g.group_name().unwrap_or_default().into(),
                labels: tags::to_labels(g.tags()),
            }));
        }
        out.retain(|r| is_managed(&r.labels));
        Ok(out)
    }

    /// Find the trial's group, or make it in the default VPC; either way its ingress is made
    /// exactly the spec's (a resumed create may bring a new --ssh-from). Egress stays open.
    pub(crate) async fn security_group_ensure(&self, spec: &FirewallSpec) -> Result<Ensured> {
        let trial = spec.labels.get(LABEL_TRIAL).cloned().unwrap_or_default();
        let wanted = permissions(&spec.rules)?;
        let c = self.client().await?;
        let found = self.security_groups_managed().await?.into_iter().find(|g| g.name == spec.name && is_managed_for(&g.labels, &trial));
        let (id, created) = match found {
            Some(g) => {
                let cur = c.describe_security_groups().group_ids(&g.id).send().await.map_err(|e| sdk("DescribeSecurityGroups", e))?;
                let old: Vec<IpPermission> = cur.security_groups().iter().flat_map(|g| g.ip_permissions()).cloned().collect();
                if !old.is_empty() {
                    c.revoke_security_group_ingress()
                        .group_id(&g.id)
                        .set_ip_permissions(Some(old))
                        .send()
                        .await
                        .map_err(|e| sdk("RevokeSecurityGroupIngress", e))?;
                }
                (g.id, false)
            }
            None => {
                let vpc = match &spec.subnet {
                    Some(s) => self.subnet(s).await?.vpc,
                    None => self.default_vpc().await?,
                };
                let out = c
                    .create_security_group()
                    .group_name(&spec.name)
                    .description(format!("munero trial {trial}: 80/443 from anywhere, 22 from the operator"))
                    .vpc_id(vpc)
                    .set_tag_specifications(Some(tags::specs(&[ResourceType::SecurityGroup], &spec.labels, Some(&spec.name))))
                    .send()
                    .await
                    .map_err(|e| sdk("CreateSecurityGroup", e))?;
                (out.group_id().unwrap_or_default().to_string(), true)
            }
        };
        c.authorize_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(wanted))
            .send()
            .await
            .map_err(|e| sdk("AuthorizeSecurityGroupIngress", e))?;
        Ok(Ensured { id, created })
    }

    pub(crate) async fn security_group_attach(&self, group: &str, instance: &str) -> Result<()> {
        let i = self.instance(instance).await?.ok_or_else(|| ProviderError::NotFound { kind: "instance".into(), id: instance.into() })?;
        let mut groups: Vec<String> = i.security_groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect();
        if groups.iter().any(|g| g == group) {
            return Ok(());
        }
        groups.push(group.to_string());
        let c = self.client().await?;
        c.modify_instance_attribute().instance_id(instance).set_groups(Some(groups)).send().await.map_err(|e| sdk("ModifyInstanceAttribute", e))?;
        Ok(())
    }

    /// Delete a group; while an interface of a terminated instance still holds it
    /// (DependencyViolation), wait and retry, up to the poll deadline.
    pub(crate) async fn security_group_delete(&self, id: &str) -> Result<()> {
        let c = self.client().await?;
        self.poll()
            .until(
                || format!("security group {id} is still in use (DependencyViolation)"),
                || async {
                    match c.delete_security_group().group_id(id).send().await {
                        Ok(_) => Ok(Some(())),
                        Err(e) => match sdk("DeleteSecurityGroup", e) {
                            e if e.is_not_found() => Ok(Some(())),
                            ProviderError::Conflict(m) if m.starts_with("DependencyViolation") || m.starts_with("InvalidGroup.InUse") => {
                                tracing::warn!("security group {id} still in use; waiting");
                                Ok(None)
                            }
                            e => Err(e),
                        },
                    }
                },
            )
            .await
    }

    pub(crate) async fn default_vpc(&self) -> Result<String> {
        let c = self.client().await?;
        let out = c.describe_vpcs().filters(tags::filter("is-default", "true")).send().await.map_err(|e| sdk("DescribeVpcs", e))?;
        out.vpcs().first().and_then(|v| v.vpc_id()).map(str::to_string).ok_or_else(|| {
            ProviderError::Invalid(format!(
                "the region {} has no default VPC: create one (aws ec2 create-default-vpc), pass --subnet subnet-..., or use another region (--location)",
                self.ec2_region()
            ))
        })
    }

    fn ec2_region(&self) -> String {
        self.ec2.get().map(|e| e.region.clone()).unwrap_or_default()
    }

    /// `--subnet`: its VPC and zone; a subnet this region does not have is named with the fix.
    pub(crate) async fn subnet(&self, id: &str) -> Result<Subnet> {
        let c = self.client().await?;
        let region = self.ec2().await?.region.clone();
        let missing = || {
            ProviderError::Invalid(format!(
                "--subnet {id}: no such subnet in {region}; subnets belong to one region: pass --location with its region, \
                 or pick one from `aws ec2 describe-subnets --region {region}`"
            ))
        };
        let out = match c.describe_subnets().subnet_ids(id).send().await {
            Ok(o) => o,
            Err(e) => {
                return Err(match sdk("DescribeSubnets", e) {
                    e if e.is_not_found() => missing(),
                    e => e,
                })
            }
        };
        let s = out.subnets().iter().find(|s| s.subnet_id() == Some(id)).ok_or_else(missing)?;
        Ok(Subnet { vpc: s.vpc_id().unwrap_or_default().to_string(), zone: s.availability_zone().unwrap_or_default().to_string() })
    }

    /// Where a launch is tried, in turn, as (subnet, zone): `--subnet` alone (it fixes the
    /// zone); else the default VPC's default subnets, the zone asked for (`--location` an
    /// availability zone) first.
    pub(crate) async fn launch_subnets(&self, location: Option<&str>, subnet: Option<&str>) -> Result<Vec<(String, String)>> {
        if let Some(id) = subnet {
            let s = self.subnet(id).await?;
            let region = self.ec2().await?.region.clone();
            if let Some(l) = location.filter(|l| *l != region && *l != s.zone) {
                return Err(ProviderError::Invalid(format!(
                    "--subnet {id} is in {} but --location asks for {l}: drop --location or give --location {}",
                    s.zone, s.zone
                )));
            }
            return Ok(vec![(id.to_string(), s.zone)]);
        }
        let c = self.client().await?;
        let vpc = self.default_vpc().await?;
        let out = c
            .describe_subnets()
            .filters(tags::filter("vpc-id", &vpc))
            .filters(tags::filter("default-for-az", "true"))
            .send()
            .await
            .map_err(|e| sdk("DescribeSubnets", e))?;
        let mut subnets: Vec<(String, String)> = out
            .subnets()
            .iter()
            .filter_map(|s| Some((s.subnet_id()?.to_string(), s.availability_zone()?.to_string())))
            .collect();
        subnets.sort_by(|a, b| (Some(a.1.as_str()) != location, &a.1).cmp(&(Some(b.1.as_str()) != location, &b.1)));
        if subnets.is_empty() {
            return Err(ProviderError::Invalid(format!("the default VPC {vpc} has no default subnets: create them (aws ec2 create-default-subnet)")));
        }
        Ok(subnets)
    }

    /// `--image` names an AMI (or is the default), `--location` is this region or one of its
    /// zones (the provider was made in the region `--location` names).
    pub(crate) async fn placement_check(&self, img: &str, location: Option<&str>) -> Result<()> {
        let region = self.ec2().await?.region.clone();
        if let Some(l) = location.filter(|l| *l != region) {
            let c = self.client().await?;
            let zones = c.describe_availability_zones().send().await.map_err(|e| sdk("DescribeAvailabilityZones", e))?;
            let names: Vec<&str> = zones.availability_zones().iter().filter_map(|z| z.zone_name()).collect();
            if !names.contains(&l) {
                let what = if crate::region_of(l).is_some() { format!("not an availability zone of {region}") } else { "not an AWS region or zone".to_string() };
                return Err(ProviderError::Invalid(format!(
                    "--location {l}: {what}; pass a region (e.g. --location {region}) or one of its zones ({})",
                    names.join(", ")
                )));
            }
        }
        self.resolve_image(img).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use munero_provider::Direction;

    #[test]
    fn a_rule_becomes_one_permission_with_v4_and_v6_ranges() {
        let r = FirewallRule {
            direction: Direction::In,
            protocol: Protocol::Tcp,
            port: Some("443".into()),
            source_ips: vec!["0.0.0.0/0".into(), "::/0".into()],
            description: "https".into(),
        };
        let p = &permissions(&[r]).unwrap()[0];
        assert_eq!((p.ip_protocol(), p.from_port(), p.to_port()), (Some("tcp"), Some(443), Some(443)));
        assert_eq!(p.ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));
        assert_eq!(p.ipv6_ranges()[0].cidr_ipv6(), Some("::/0"));
    }
}
