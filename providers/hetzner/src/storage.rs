//! Snapshots (images of type snapshot), volumes and primary IPs: what a trial can leave behind
//! besides its server, firewall and key. The tool takes snapshots; volumes and primary IPs it
//! never makes, but the orphan sweep lists and removes labelled ones all the same. Also the
//! fresh lookup by id that a receipt quotes as the provider's proof that something is gone.

use munero_provider::{is_managed, Labels, Lookup, ProviderError, Resource, ResourceKind, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::Retry;
use crate::models::{nullable, Action};
use crate::HetznerProvider;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ApiImage {
    id: u64,
    #[serde(rename = "type", deserialize_with = "nullable")]
    itype: String,
    #[serde(deserialize_with = "nullable")]
    description: String,
    #[serde(deserialize_with = "nullable")]
    labels: Labels,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Named {
    id: u64,
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    labels: Labels,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateImageResponse {
    image: ApiImage,
    action: Option<Action>,
}

fn snapshot(i: ApiImage) -> Resource {
    Resource { kind: ResourceKind::Snapshot, id: i.id.to_string(), name: i.description, labels: i.labels }
}

/// The API path of one resource (DNS records are looked up through their zone).
pub(crate) fn resource_path(kind: ResourceKind, id: &str) -> Option<String> {
    Some(match kind {
        ResourceKind::Server => format!("/servers/{id}"),
        ResourceKind::Firewall => format!("/firewalls/{id}"),
        ResourceKind::SshKey => format!("/ssh_keys/{id}"),
        ResourceKind::Snapshot => format!("/images/{id}"),
        ResourceKind::Volume => format!("/volumes/{id}"),
        ResourceKind::PrimaryIp => format!("/primary_ips/{id}"),
        ResourceKind::DnsRecord => {
            let (zone, name, rtype) = munero_provider::RecordSet::parse_resource_id(id)?;
            format!("/zones/{zone}/rrsets/{name}/{rtype}")
        }
    })
}

impl HetznerProvider {
    pub(crate) async fn snapshot_create(&self, server_id: &str, description: &str, labels: &Labels) -> Result<Resource> {
        if !is_managed(labels) {
            return Err(ProviderError::Invalid("a snapshot's labels must carry munero-managed=true".into()));
        }
        let body = json!({"type": "snapshot", "description": description, "labels": labels});
        // Not retried on a lost answer: a second snapshot would only cost storage, and the caller
        // lists the trial's snapshots afterwards anyway.
        let r: CreateImageResponse =
            self.client.post(&format!("/servers/{server_id}/actions/create_image"), &body, Retry::RateLimitOnly).await?;
        if let Some(a) = &r.action {
            self.wait_actions(std::slice::from_ref(a)).await?;
        }
        Ok(snapshot(r.image))
    }

    /// Snapshots, volumes and primary IPs carrying `selector`, side by side.
    pub(crate) async fn storage_listed(&self, selector: &str) -> Result<Vec<Resource>> {
        let (images, volumes, ips) = tokio::join!(
            self.list_all::<ApiImage>("/images", "images", Some(selector)),
            self.list_all::<Named>("/volumes", "volumes", Some(selector)),
            self.list_all::<Named>("/primary_ips", "primary_ips", Some(selector)),
        );
        let mut out: Vec<Resource> = images?.into_iter().filter(|i| i.itype == "snapshot").map(snapshot).collect();
        let named = |kind| move |n: Named| Resource { kind, id: n.id.to_string(), name: n.name, labels: n.labels };
        out.extend(volumes?.into_iter().map(named(ResourceKind::Volume)));
        out.extend(ips?.into_iter().map(named(ResourceKind::PrimaryIp)));
        out.retain(|r| is_managed(&r.labels));
        Ok(out)
    }

    /// A snapshot's, volume's or primary IP's path and current labels (None: it does not exist).
    async fn storage_labels(&self, kind: ResourceKind, id: &str) -> Result<(String, Option<Labels>)> {
        let path = resource_path(kind, id).ok_or_else(|| ProviderError::Invalid(format!("bad {kind} id {id}")))?;
        let v: Value = match self.client.get(&path, &[]).await {
            Ok(v) => v,
            Err(e) if e.is_not_found() => return Ok((path, None)),
            Err(e) => return Err(e),
        };
        let item = v.as_object().and_then(|o| o.values().next()).cloned().unwrap_or(Value::Null);
        let labels: Labels = serde_json::from_value(item.get("labels").cloned().unwrap_or(Value::Null)).unwrap_or_default();
        Ok((path, Some(labels)))
    }

    /// Replace the labels of a managed snapshot, volume or primary IP (extend moves the expiry).
    pub(crate) async fn storage_set_labels(&self, kind: ResourceKind, id: &str, labels: &Labels) -> Result<()> {
        match self.storage_labels(kind, id).await? {
            (_, None) => Err(ProviderError::NotFound { kind: kind.to_string(), id: id.into() }),
            (_, Some(l)) if !is_managed(&l) => {
                Err(ProviderError::Invalid(format!("{kind} {id} does not carry munero-managed=true; not changing it")))
            }
            (path, Some(_)) => self.client.put::<Value>(&path, &json!({ "labels": labels })).await.map(|_| ()),
        }
    }

    /// Delete a snapshot, volume or primary IP after checking its labels; NotFound is done.
    pub(crate) async fn storage_delete(&self, kind: ResourceKind, id: &str) -> Result<()> {
        let path = match self.storage_labels(kind, id).await? {
            (_, None) => return Ok(()),
            (_, Some(l)) if !is_managed(&l) => {
                return Err(ProviderError::Invalid(format!("{kind} {id} does not carry munero-managed=true; not deleting it")))
            }
            (path, Some(_)) => path,
        };
        match self.client.delete(&path).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn lookup_fresh(&self, kind: ResourceKind, id: &str) -> Result<Lookup> {
        let path = resource_path(kind, id).ok_or_else(|| ProviderError::Invalid(format!("bad {kind} id {id}")))?;
        let request = format!("GET {path}");
        match self.client.get::<Value>(&path, &[]).await {
            Ok(_) => Ok(Lookup { request, answer: "200 (it still exists)".into(), gone: false }),
            Err(e) if e.is_not_found() => Ok(Lookup { request, answer: "404 not_found".into(), gone: true }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_path_and_record_ids_go_through_their_zone() {
        assert_eq!(resource_path(ResourceKind::Snapshot, "7").as_deref(), Some("/images/7"));
        assert_eq!(resource_path(ResourceKind::PrimaryIp, "3").as_deref(), Some("/primary_ips/3"));
        assert_eq!(resource_path(ResourceKind::DnsRecord, "42/t1/A").as_deref(), Some("/zones/42/rrsets/t1/A"));
        assert_eq!(resource_path(ResourceKind::DnsRecord, "42"), None);
        for k in ResourceKind::ALL {
            let id = if k == ResourceKind::DnsRecord { "1/a/A" } else { "1" };
            assert!(resource_path(k, id).is_some(), "{k}");
        }
    }
}
