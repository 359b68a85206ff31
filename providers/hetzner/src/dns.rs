//! DNS zones and record sets through the Cloud API (`/zones`, `/zones/{id}/rrsets`), same
//! token as the servers. Records are found and deleted by their labels like every other
//! resource; one that is not managed is never changed.

use munero_provider::{is_managed, managed_selector, ProviderError, RecordSet, Resource, ResourceKind, Result, Zone};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::Retry;
use crate::models::nullable;
use crate::HetznerProvider;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiZone {
    pub id: u64,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub authoritative_nameservers: Nameservers,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Nameservers {
    #[serde(deserialize_with = "nullable")]
    pub assigned: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiRrSet {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub rtype: String,
    #[serde(deserialize_with = "nullable")]
    pub records: Vec<ApiRecord>,
    #[serde(deserialize_with = "nullable")]
    pub labels: munero_provider::Labels,
    pub zone: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiRecord {
    #[serde(deserialize_with = "nullable")]
    pub value: String,
}

fn zone(z: ApiZone) -> Zone {
    Zone { id: z.id.to_string(), name: z.name, nameservers: z.authoritative_nameservers.assigned }
}

fn record(zone_id: &str, r: ApiRrSet) -> RecordSet {
    RecordSet {
        zone_id: zone_id.to_string(),
        name: r.name,
        rtype: r.rtype,
        values: r.records.into_iter().map(|v| v.value).collect(),
        labels: r.labels,
    }
}

fn rrset_path(zone_id: &str, name: &str, rtype: &str) -> String {
    format!("/zones/{zone_id}/rrsets/{name}/{rtype}")
}

impl HetznerProvider {
    /// The longest zone name that `fqdn` ends with: one lookup per candidate suffix.
    pub(crate) async fn dns_find_zone(&self, fqdn: &str) -> Result<Option<Zone>> {
        let labels: Vec<&str> = fqdn.trim_end_matches('.').split('.').collect();
        for i in 0..labels.len().saturating_sub(1) {
            let candidate = labels[i..].join(".").to_ascii_lowercase();
            let v: Value = self.client.get("/zones", &[("name", candidate)]).await?;
            let found: Vec<ApiZone> = serde_json::from_value(v.get("zones").cloned().unwrap_or(Value::Null)).unwrap_or_default();
            if let Some(z) = found.into_iter().next() {
                return Ok(Some(zone(z)));
            }
        }
        Ok(None)
    }

    pub(crate) async fn dns_get_record(&self, zone_id: &str, name: &str, rtype: &str) -> Result<Option<RecordSet>> {
        match self.client.get::<Value>(&rrset_path(zone_id, name, rtype), &[]).await {
            Ok(v) => {
                let r: ApiRrSet = serde_json::from_value(v.get("rrset").cloned().unwrap_or(Value::Null))
                    .map_err(|e| ProviderError::Api { status: 200, code: "decode".into(), message: e.to_string() })?;
                Ok(Some(record(zone_id, r)))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn dns_create_record(&self, r: &RecordSet, ttl: u32) -> Result<()> {
        let records: Vec<Value> = r.values.iter().map(|v| json!({"value": v})).collect();
        let body = json!({"name": r.name, "type": r.rtype, "ttl": ttl, "records": records, "labels": r.labels});
        let v: Value = self.client.post(&format!("/zones/{}/rrsets", r.zone_id), &body, Retry::RateLimitOnly).await?;
        if let Some(a) = v.get("action").cloned().and_then(|a| serde_json::from_value(a).ok()) {
            self.wait_actions(&[a]).await?;
        }
        Ok(())
    }

    /// Every managed record set in every zone of the account.
    pub(crate) async fn dns_managed_records(&self) -> Result<Vec<Resource>> {
        let zones: Vec<ApiZone> = self.list_all("/zones", "zones", None).await?;
        let sel = managed_selector();
        let mut out = Vec::new();
        for z in zones {
            let zid = z.id.to_string();
            let sets: Vec<ApiRrSet> = self.list_all(&format!("/zones/{zid}/rrsets"), "rrsets", Some(&sel)).await?;
            for r in sets.into_iter().filter(|r| is_managed(&r.labels)) {
                let fqdn = if r.name == "@" { z.name.clone() } else { format!("{}.{}", r.name, z.name) };
                out.push(Resource {
                    kind: ResourceKind::DnsRecord,
                    id: RecordSet::resource_id(&zid, &r.name, &r.rtype),
                    name: fqdn,
                    labels: r.labels,
                });
            }
        }
        Ok(out)
    }

    /// Replace a managed record set's labels.
    pub(crate) async fn dns_set_labels(&self, id: &str, labels: &munero_provider::Labels) -> Result<()> {
        let (zone_id, name, rtype) = RecordSet::parse_resource_id(id)
            .ok_or_else(|| ProviderError::Invalid(format!("dns record id {id:?} is not <zone>/<name>/<type>")))?;
        let r = self
            .dns_get_record(zone_id, name, rtype)
            .await?
            .ok_or_else(|| ProviderError::NotFound { kind: "dns record".into(), id: id.to_string() })?;
        if !is_managed(&r.labels) {
            return Err(ProviderError::Invalid(format!("dns record {name} {rtype} does not carry munero-managed=true; not changing it")));
        }
        self.client.put::<Value>(&rrset_path(zone_id, name, rtype), &json!({ "labels": labels })).await.map(|_| ())
    }

    /// Delete a record set after reading its labels again: one that is not managed stays.
    pub(crate) async fn dns_delete_record(&self, id: &str) -> Result<()> {
        let (zone_id, name, rtype) = RecordSet::parse_resource_id(id)
            .ok_or_else(|| ProviderError::Invalid(format!("dns record id {id:?} is not <zone>/<name>/<type>")))?;
        let Some(r) = self.dns_get_record(zone_id, name, rtype).await? else { return Ok(()) };
        if !is_managed(&r.labels) {
            return Err(ProviderError::Invalid(format!(
                "dns record {name} {rtype} in zone {zone_id} does not carry munero-managed=true; not deleting it"
            )));
        }
        match self.client.delete(&rrset_path(zone_id, name, rtype)).await {
            Ok(body) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if let Some(a) = v.get("action").cloned().and_then(|a| serde_json::from_value(a).ok()) {
                    self.wait_actions(&[a]).await?;
                }
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
