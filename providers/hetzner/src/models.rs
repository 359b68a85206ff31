//! Lenient models of the Hetzner Cloud API: only the fields read, every field defaulted,
//! `null` accepted where a value is expected, enum-like fields kept as strings so an
//! unknown value never breaks decoding (the generated `hcloud` crate broke exactly there).

use munero_provider::Labels;
use serde::{Deserialize, Deserializer};

/// Treat `null` like a missing field.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Server {
    pub id: u64,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: Labels,
    #[serde(deserialize_with = "nullable")]
    pub public_net: PublicNet,
    #[serde(deserialize_with = "nullable")]
    pub server_type: Named,
    #[serde(deserialize_with = "nullable")]
    pub location: Named,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PublicNet {
    pub ipv4: Option<Ip>,
    pub ipv6: Option<Ip>,
    #[serde(deserialize_with = "nullable")]
    pub firewalls: Vec<IdRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Ip {
    #[serde(deserialize_with = "nullable")]
    pub ip: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Named {
    pub id: u64,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IdRef {
    pub id: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Action {
    pub id: u64,
    #[serde(deserialize_with = "nullable")]
    pub command: String,
    /// "running" | "success" | "error" (others tolerated and treated as running).
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    pub progress: i64,
    pub error: Option<ActionError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActionError {
    #[serde(deserialize_with = "nullable")]
    pub code: String,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Firewall {
    pub id: u64,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: Labels,
    #[serde(deserialize_with = "nullable")]
    pub applied_to: Vec<AppliedTo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AppliedTo {
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    pub server: Option<IdRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SshKey {
    pub id: u64,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: Labels,
    #[serde(deserialize_with = "nullable")]
    pub public_key: String,
    #[serde(deserialize_with = "nullable")]
    pub fingerprint: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerType {
    pub id: u64,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub deprecated: Option<bool>,
    pub prices: Vec<LocationPrice>,
}

/// One location's entry of a `prices` list (server types, primary IPs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LocationPrice {
    #[serde(deserialize_with = "nullable")]
    pub location: String,
    pub price_hourly: Amount,
    pub price_monthly: Amount,
}

/// Prices are decimal strings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Amount {
    #[serde(deserialize_with = "nullable")]
    pub net: String,
    #[serde(deserialize_with = "nullable")]
    pub gross: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pricing {
    #[serde(deserialize_with = "nullable")]
    pub currency: String,
    pub primary_ips: Vec<PrimaryIpPrices>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PrimaryIpPrices {
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub ip_type: String,
    pub prices: Vec<LocationPrice>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PricingEnvelope {
    pub pricing: Pricing,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Image {
    pub id: u64,
    /// Set for system images (e.g. "ubuntu-24.04"); null for snapshots.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ImageEnvelope {
    pub image: Image,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Meta {
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pagination {
    pub page: Option<u64>,
    pub next_page: Option<u64>,
    pub last_page: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    #[serde(deserialize_with = "nullable")]
    pub code: String,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
}

// Response envelopes.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServerEnvelope {
    pub server: Server,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateServerResponse {
    pub server: Server,
    pub action: Option<Action>,
    #[serde(deserialize_with = "nullable")]
    pub next_actions: Vec<Action>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionEnvelope {
    pub action: Option<Action>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionsEnvelope {
    #[serde(deserialize_with = "nullable")]
    pub actions: Vec<Action>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FirewallEnvelope {
    pub firewall: Firewall,
    #[serde(deserialize_with = "nullable")]
    pub actions: Vec<Action>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SshKeyEnvelope {
    pub ssh_key: SshKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_decodes_without_datacenter_and_with_unknown_fields_and_nulls() {
        let j = r#"{"server":{"id":42,"name":"acme","status":"brand_new_state",
            "labels":null,"public_net":{"ipv4":null,"ipv6":null,"firewalls":[]},
            "server_type":{"name":"cpx41","cores":8},"image":null,"iso":null,
            "something_new":{"x":1}}}"#;
        let s: ServerEnvelope = serde_json::from_str(j).unwrap();
        assert_eq!(s.server.id, 42);
        assert_eq!(s.server.status, "brand_new_state");
        assert!(s.server.labels.is_empty());
        assert!(s.server.public_net.ipv4.is_none());
        assert_eq!(s.server.server_type.name, "cpx41");
        assert_eq!(s.server.location.name, "");
    }

    #[test]
    fn action_with_error_decodes() {
        let j = r#"{"action":{"id":7,"command":"create_server","status":"error","progress":100,
            "error":{"code":"action_failed","message":"boom"},"resources":[]}}"#;
        let a: ActionEnvelope = serde_json::from_str(j).unwrap();
        let a = a.action.unwrap();
        assert_eq!(a.status, "error");
        assert_eq!(a.error.unwrap().message, "boom");
    }

    #[test]
    fn error_body_decodes() {
        let j = r#"{"error":{"code":"uniqueness_error","message":"name is already used","details":{}}}"#;
        let e: ErrorBody = serde_json::from_str(j).unwrap();
        assert_eq!(e.error.code, "uniqueness_error");
    }
}
