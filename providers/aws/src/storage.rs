//! Snapshots (an AMI and its EBS snapshots), detached volumes and elastic IPs; and, for every
//! kind, the fresh read of a resource's tags that deletes, relabels and receipts rely on.

use aws_sdk_ec2::types::{ImageState, InstanceStateName, ResourceType, Tag};
use munero_provider::{is_managed, Labels, Lookup, ProviderError, Resource, ResourceKind, Result, LABEL_TRIAL};

use crate::error::sdk;
use crate::regional::Regional;
use crate::tags;

/// What a describe by id answered: the tags, or gone with the answer's words.
enum Seen {
    Here { labels: Labels, state: String },
    Gone(String),
}

impl Regional {
    async fn seen(&self, kind: ResourceKind, id: &str) -> Result<(String, Seen)> {
        let c = self.client().await?;
        let gone = |e: ProviderError| -> Result<Seen> {
            match e {
                ProviderError::NotFound { kind, .. } => Ok(Seen::Gone(format!("{kind}.NotFound"))),
                e => Err(e),
            }
        };
        let here = |tags: &[Tag], state: &str| Seen::Here { labels: tags::to_labels(tags), state: state.to_string() };
        Ok(match kind {
            // Each answer is matched on the id again: an emulator that ignores the id list
            // must not make another resource's tags count for this one.
            ResourceKind::Server => (
                format!("DescribeInstances InstanceIds={id}"),
                match self.instance(id).await? {
                    None => Seen::Gone("InvalidInstanceID.NotFound".into()),
                    Some(i) if i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Terminated) => Seen::Gone("terminated".into()),
                    Some(i) => here(i.tags(), i.state().and_then(|s| s.name()).map(|n| n.as_str()).unwrap_or_default()),
                },
            ),
            ResourceKind::Firewall => (
                format!("DescribeSecurityGroups GroupIds={id}"),
                match c.describe_security_groups().group_ids(id).send().await {
                    Ok(o) => o.security_groups().iter().find(|g| g.group_id() == Some(id)).map(|g| here(g.tags(), "exists")).unwrap_or(Seen::Gone("none".into())),
                    Err(e) => gone(sdk("DescribeSecurityGroups", e))?,
                },
            ),
            ResourceKind::SshKey => (
                format!("DescribeKeyPairs Filter key-pair-id={id}"),
                match c.describe_key_pairs().filters(tags::filter("key-pair-id", id)).send().await {
                    Ok(o) => o
                        .key_pairs()
                        .iter()
                        .find(|k| k.key_pair_id() == Some(id))
                        .map(|k| here(k.tags(), "exists"))
                        .unwrap_or(Seen::Gone("none".into())),
                    Err(e) => gone(sdk("DescribeKeyPairs", e))?,
                },
            ),
            ResourceKind::Snapshot if id.starts_with("snap-") => (
                format!("DescribeSnapshots SnapshotIds={id}"),
                match c.describe_snapshots().snapshot_ids(id).send().await {
                    Ok(o) => o.snapshots().iter().find(|s| s.snapshot_id() == Some(id)).map(|s| here(s.tags(), s.state().map(|s| s.as_str()).unwrap_or_default())).unwrap_or(Seen::Gone("none".into())),
                    Err(e) => gone(sdk("DescribeSnapshots", e))?,
                },
            ),
            ResourceKind::Snapshot => (
                format!("DescribeImages ImageIds={id}"),
                match c.describe_images().image_ids(id).send().await {
                    Ok(o) => match o.images().iter().find(|i| i.image_id() == Some(id)) {
                        Some(i) if i.state() == Some(&ImageState::Deregistered) => Seen::Gone("deregistered".into()),
                        Some(i) => here(i.tags(), i.state().map(|s| s.as_str()).unwrap_or_default()),
                        None => Seen::Gone("none".into()),
                    },
                    Err(e) => gone(sdk("DescribeImages", e))?,
                },
            ),
            ResourceKind::Volume => (
                format!("DescribeVolumes VolumeIds={id}"),
                match c.describe_volumes().volume_ids(id).send().await {
                    Ok(o) => o.volumes().iter().find(|v| v.volume_id() == Some(id)).map(|v| here(v.tags(), v.state().map(|s| s.as_str()).unwrap_or_default())).unwrap_or(Seen::Gone("none".into())),
                    Err(e) => gone(sdk("DescribeVolumes", e))?,
                },
            ),
            ResourceKind::PrimaryIp => (
                format!("DescribeAddresses AllocationIds={id}"),
                match c.describe_addresses().allocation_ids(id).send().await {
                    Ok(o) => o.addresses().iter().find(|a| a.allocation_id() == Some(id)).map(|a| here(a.tags(), "allocated")).unwrap_or(Seen::Gone("none".into())),
                    Err(e) => gone(sdk("DescribeAddresses", e))?,
                },
            ),
            ResourceKind::DnsRecord => return Err(ProviderError::Invalid(format!("aws keeps no DNS records here ({id})"))),
        })
    }

    /// The resource's tags as AWS has them now; None when it is gone.
    pub(crate) async fn current_labels(&self, kind: ResourceKind, id: &str) -> Result<Option<Labels>> {
        Ok(match self.seen(kind, id).await?.1 {
            Seen::Here { labels, .. } => Some(labels),
            Seen::Gone(_) => None,
        })
    }

    pub(crate) async fn lookup_fresh(&self, kind: ResourceKind, id: &str) -> Result<Lookup> {
        let (request, seen) = self.seen(kind, id).await?;
        Ok(match seen {
            Seen::Here { state, .. } => Lookup { request, answer: state, gone: false },
            Seen::Gone(answer) => Lookup { request, answer, gone: true },
        })
    }

    /// Replace the munero tags of a resource: set the new ones, drop munero tags not in them.
    pub(crate) async fn retag(&self, id: &str, cur: &Labels, new: &Labels) -> Result<()> {
        let c = self.client().await?;
        c.create_tags().resources(id).set_tags(Some(tags::to_tags(new, None))).send().await.map_err(|e| sdk("CreateTags", e))?;
        let stale: Vec<Tag> =
            cur.keys().filter(|k| k.starts_with("munero-") && !new.contains_key(*k)).map(|k| Tag::builder().key(k).build()).collect();
        if !stale.is_empty() {
            c.delete_tags().resources(id).set_tags(Some(stale)).send().await.map_err(|e| sdk("DeleteTags", e))?;
        }
        Ok(())
    }

    /// Tagged AMIs and EBS snapshots (a snapshot left by a half-deleted AMI is swept on its own),
    /// volumes that are detached (an attached root volume goes with its instance), elastic IPs.
    pub(crate) async fn storage_managed(&self) -> Result<Vec<Resource>> {
        let c = self.client().await?;
        let f = || Some(tags::managed_filters(None));
        let (images, snaps, vols, addrs) = tokio::join!(
            c.describe_images().owners("self").set_filters(f()).send(),
            c.describe_snapshots().owner_ids("self").set_filters(f()).send(),
            c.describe_volumes().set_filters(f()).filters(tags::filter("status", "available")).send(),
            c.describe_addresses().set_filters(f()).send(),
        );
        let res = |kind, id: Option<&str>, name: Option<&str>, t: &[Tag]| {
            let labels = tags::to_labels(t);
            let id = id.unwrap_or_default().to_string();
            let name = name.map(str::to_string).or_else(|| labels.get(LABEL_TRIAL).cloned()).unwrap_or_else(|| id.clone());
            Resource { kind, id, name, labels }
        };
        let mut out = Vec::new();
        let images = images.map_err(|e| sdk("DescribeImages", e))?;
        out.extend(images.images().iter().filter(|i| i.state() != Some(&ImageState::Deregistered)).map(|i| res(ResourceKind::Snapshot, i.image_id(), i.name(), i.tags())));
        // The EBS snapshots behind a listed AMI go with it; only loose ones are listed.
        let behind: Vec<String> = images
            .images()
            .iter()
            .flat_map(|i| i.block_device_mappings())
            .filter_map(|b| b.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
            .collect();
        let snaps = snaps.map_err(|e| sdk("DescribeSnapshots", e))?;
        out.extend(
            snaps
                .snapshots()
                .iter()
                .filter(|s| !behind.iter().any(|b| Some(b.as_str()) == s.snapshot_id()))
                .map(|s| res(ResourceKind::Snapshot, s.snapshot_id(), None, s.tags())),
        );
        let vols = vols.map_err(|e| sdk("DescribeVolumes", e))?;
        out.extend(vols.volumes().iter().map(|v| res(ResourceKind::Volume, v.volume_id(), None, v.tags())));
        let addrs = addrs.map_err(|e| sdk("DescribeAddresses", e))?;
        out.extend(addrs.addresses().iter().map(|a| res(ResourceKind::PrimaryIp, a.allocation_id(), a.public_ip(), a.tags())));
        out.retain(|r| is_managed(&r.labels));
        Ok(out)
    }

    /// Delete one (tags already checked by the caller). An AMI takes its tagged snapshots with it.
    pub(crate) async fn storage_delete(&self, kind: ResourceKind, id: &str) -> Result<()> {
        let c = self.client().await?;
        match kind {
            ResourceKind::Snapshot if id.starts_with("snap-") => {
                c.delete_snapshot().snapshot_id(id).send().await.map_err(|e| sdk("DeleteSnapshot", e))?;
            }
            ResourceKind::Snapshot => {
                let img = c.describe_images().image_ids(id).send().await.map_err(|e| sdk("DescribeImages", e))?;
                let snaps: Vec<String> = img
                    .images()
                    .iter()
                    .flat_map(|i| i.block_device_mappings())
                    .filter_map(|b| b.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
                    .collect();
                c.deregister_image().image_id(id).send().await.map_err(|e| sdk("DeregisterImage", e))?;
                for s in snaps {
                    match self.current_labels(ResourceKind::Snapshot, &s).await? {
                        Some(l) if is_managed(&l) => {
                            c.delete_snapshot().snapshot_id(&s).send().await.map_err(|e| sdk("DeleteSnapshot", e))?;
                        }
                        Some(_) => tracing::warn!("snapshot {s} of image {id} is not tagged munero-managed=true; kept"),
                        None => {}
                    }
                }
            }
            ResourceKind::Volume => {
                c.delete_volume().volume_id(id).send().await.map_err(|e| sdk("DeleteVolume", e))?;
            }
            ResourceKind::PrimaryIp => {
                c.release_address().allocation_id(id).send().await.map_err(|e| sdk("ReleaseAddress", e))?;
            }
            _ => return Err(ProviderError::Invalid(format!("not a storage kind: {kind}"))),
        }
        Ok(())
    }

    /// CreateImage, the image and its snapshots tagged at creation; waits until available.
    pub(crate) async fn image_create(&self, server_id: &str, description: &str, labels: &Labels) -> Result<Resource> {
        let c = self.client().await?;
        let name = format!(
            "munero-{}-{}",
            labels.get(LABEL_TRIAL).map(String::as_str).unwrap_or("trial"),
            labels.get(munero_provider::LABEL_CREATED).map(String::as_str).unwrap_or("0")
        );
        let out = c
            .create_image()
            .instance_id(server_id)
            .name(&name)
            .description(description)
            .set_tag_specifications(Some(tags::specs(&[ResourceType::Image, ResourceType::Snapshot], labels, Some(&name))))
            .send()
            .await
            .map_err(|e| sdk("CreateImage", e))?;
        let id = out.image_id().unwrap_or_default().to_string();
        self.poll()
            .until(
                || format!("image {id} is not available"),
                || async {
                    let o = c.describe_images().image_ids(&id).send().await.map_err(|e| sdk("DescribeImages", e))?;
                    match o.images().first().and_then(|i| i.state()) {
                        Some(ImageState::Available) => Ok(Some(())),
                        Some(ImageState::Failed | ImageState::Error) => Err(ProviderError::Other(format!("image {id} failed"))),
                        _ => Ok(None),
                    }
                },
            )
            .await?;
        let mut labels = labels.clone();
        labels.insert(tags::NAME.into(), name.clone());
        Ok(Resource { kind: ResourceKind::Snapshot, id, name, labels })
    }
}

