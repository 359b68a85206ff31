//! Hetzner Cloud provider over a thin reqwest client.
//!
//! Find-or-create per resource by label (re-running create is safe), action polling like
//! hcloud-go (`GET /actions?id=...` with a growing interval and a deadline), delete only what
//! carries the munero labels, NotFound counts as done.

pub mod client;
pub mod dns;
pub mod models;
mod storage;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use munero_provider::{
    is_managed, is_managed_for, managed_selector, trial_selector, Ensured, FirewallRule, FirewallSpec,
    PriceQuote, Provider, ProviderError, RecordSet, Resource, ResourceKind, Result, ServerInfo, ServerSpec, SshKeySpec, Zone,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::client::{env_u64, Client, Retry, RetryPolicy};
use crate::models::*;

pub const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";

/// How actions and state changes are polled.
#[derive(Debug, Clone)]
pub struct PollPolicy {
    pub interval: Duration,
    pub max_interval: Duration,
    pub deadline: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy { interval: Duration::from_millis(1000), max_interval: Duration::from_secs(10), deadline: Duration::from_secs(600) }
    }
}

impl PollPolicy {
    /// Defaults with `MUNERO_POLL_MS` (first interval) and `MUNERO_POLL_TIMEOUT_S` applied.
    pub fn from_env() -> Self {
        let mut p = PollPolicy::default();
        if let Some(ms) = env_u64("MUNERO_POLL_MS") {
            p.interval = Duration::from_millis(ms.max(1));
            p.max_interval = p.max_interval.min(Duration::from_millis(ms.saturating_mul(10).max(1)));
        }
        if let Some(s) = env_u64("MUNERO_POLL_TIMEOUT_S") {
            p.deadline = Duration::from_secs(s.max(1));
        }
        p
    }
}

#[derive(Debug, Clone)]
pub struct HetznerProvider {
    client: Client,
    poll: PollPolicy,
}

/// How many times a create is re-tried after a 5xx/timeout whose outcome is unknown.
const CREATE_ATTEMPTS: u32 = 4;
/// Action ids asked for in one `GET /actions`.
const ACTIONS_PER_READ: usize = 25;
/// Upper bound on pages walked in one listing.
const MAX_PAGES: u64 = 200;

impl HetznerProvider {
    pub fn new(endpoint: &str, token: &str, retry: RetryPolicy, poll: PollPolicy) -> Result<Self> {
        Ok(HetznerProvider { client: Client::new(endpoint, token, retry)?, poll })
    }

    /// From `HCLOUD_ENDPOINT` (default the public API) and the given token, policies from env.
    pub fn from_env(token: &str) -> Result<Self> {
        let endpoint = std::env::var("HCLOUD_ENDPOINT").ok().filter(|s| !s.trim().is_empty());
        Self::new(endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT), token, RetryPolicy::from_env(), PollPolicy::from_env())
    }

    /// Walk every page of a listing.
    pub(crate) async fn list_all<T: DeserializeOwned>(&self, path: &str, field: &str, selector: Option<&str>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let mut q = vec![("page", page.to_string()), ("per_page", "50".to_string())];
            if let Some(s) = selector {
                q.push(("label_selector", s.to_string()));
            }
            let v: Value = self.client.get(path, &q).await?;
            if let Some(items) = v.get(field).and_then(Value::as_array) {
                for it in items {
                    match serde_json::from_value::<T>(it.clone()) {
                        Ok(x) => out.push(x),
                        Err(e) => tracing::warn!("skipping an undecodable item of {path}: {e}"),
                    }
                }
            }
            let meta: Meta = v.get("meta").cloned().map(serde_json::from_value).transpose().ok().flatten().unwrap_or_default();
            match meta.pagination.and_then(|p| p.next_page) {
                Some(n) if n > page && n <= MAX_PAGES => page = n,
                _ => break,
            }
        }
        Ok(out)
    }

    /// Poll actions until all finished (like hcloud-go's WaitFor): `GET /actions?id=..`, interval
    /// growing x1.5 up to a cap, overall deadline. An action in `error` fails the wait.
    pub async fn wait_actions(&self, actions: &[Action]) -> Result<()> {
        let mut pending: Vec<Action> = actions.iter().filter(|a| a.id != 0).cloned().collect();
        pending.retain(|a| !self.finished(a).unwrap_or(false));
        // Surface errors already present.
        for a in actions {
            self.finished(a)?;
        }
        let start = Instant::now();
        let mut interval = self.poll.interval;
        while !pending.is_empty() {
            if start.elapsed() > self.poll.deadline {
                let cmds: Vec<_> = pending.iter().map(|a| format!("{} ({})", a.command, a.id)).collect();
                return Err(ProviderError::Timeout(format!(
                    "actions still running after {}s: {}",
                    self.poll.deadline.as_secs(),
                    cmds.join(", ")
                )));
            }
            tokio::time::sleep(interval).await;
            interval = interval.mul_f64(1.5).min(self.poll.max_interval);
            // Many actions (a teardown of many trials) are read a page of ids at a time.
            let mut got: Vec<Action> = Vec::new();
            for chunk in pending.chunks(ACTIONS_PER_READ) {
                let q: Vec<(&str, String)> = chunk.iter().map(|a| ("id", a.id.to_string())).collect();
                let page: ActionsEnvelope = self.client.get("/actions", &q).await?;
                got.extend(page.actions);
            }
            let mut still = Vec::new();
            for p in pending {
                match got.iter().find(|a| a.id == p.id) {
                    Some(a) => {
                        if !self.finished(a)? {
                            still.push(a.clone());
                        }
                    }
                    None => still.push(p),
                }
            }
            pending = still;
        }
        Ok(())
    }

    fn finished(&self, a: &Action) -> Result<bool> {
        match a.status.as_str() {
            "success" => Ok(true),
            "error" => {
                let e = a.error.clone().unwrap_or_default();
                Err(ProviderError::ActionFailed { command: a.command.clone(), code: e.code, message: e.message })
            }
            _ => Ok(false),
        }
    }

    async fn get_server(&self, id: u64) -> Result<Server> {
        let e: ServerEnvelope = self.client.get(&format!("/servers/{id}"), &[]).await.map_err(|e| kind_nf(e, "server", id))?;
        Ok(e.server)
    }

    async fn get_firewall(&self, id: u64) -> Result<Firewall> {
        let e: FirewallEnvelope =
            self.client.get(&format!("/firewalls/{id}"), &[]).await.map_err(|e| kind_nf(e, "firewall", id))?;
        Ok(e.firewall)
    }

    async fn get_ssh_key(&self, id: u64) -> Result<SshKey> {
        let e: SshKeyEnvelope =
            self.client.get(&format!("/ssh_keys/{id}"), &[]).await.map_err(|e| kind_nf(e, "ssh key", id))?;
        Ok(e.ssh_key)
    }

    async fn find_ssh_key(&self, name: &str, trial: &str) -> Result<Option<SshKey>> {
        let keys: Vec<SshKey> = self.list_all("/ssh_keys", "ssh_keys", Some(&trial_selector(trial))).await?;
        Ok(keys.into_iter().find(|k| k.name == name && is_managed_for(&k.labels, trial)))
    }

    async fn find_firewall(&self, name: &str, trial: &str) -> Result<Option<Firewall>> {
        let fws: Vec<Firewall> = self.list_all("/firewalls", "firewalls", Some(&trial_selector(trial))).await?;
        Ok(fws.into_iter().find(|f| f.name == name && is_managed_for(&f.labels, trial)))
    }

    async fn find_server_raw(&self, name: &str, trial: &str) -> Result<Option<Server>> {
        let servers: Vec<Server> = self.list_all("/servers", "servers", Some(&trial_selector(trial))).await?;
        let mut mine: Vec<Server> = servers.into_iter().filter(|s| is_managed_for(&s.labels, trial)).collect();
        if mine.len() > 1 {
            let ids: Vec<String> = mine.iter().map(|s| s.id.to_string()).collect();
            return Err(ProviderError::Other(format!(
                "trial {trial} has {} servers ({}); expected one: destroy the trial and create it again",
                mine.len(),
                ids.join(", ")
            )));
        }
        let _ = name;
        Ok(mine.pop())
    }

    /// Run a create call; on an outcome-unknown failure (5xx, timeout) look the resource up by
    /// label before trying again, so a lost answer never makes a second resource.
    async fn create_or_find<T, C, CF, L, LF>(&self, what: &str, create: C, lookup: L) -> Result<(T, bool)>
    where
        C: Fn() -> CF,
        CF: std::future::Future<Output = Result<T>>,
        L: Fn() -> LF,
        LF: std::future::Future<Output = Result<Option<T>>>,
    {
        let mut last = String::new();
        for attempt in 1..=CREATE_ATTEMPTS {
            match create().await {
                Ok(t) => return Ok((t, true)),
                Err(e) if outcome_unknown(&e) => {
                    tracing::warn!("creating {what}: {e}; checking whether it exists before retrying");
                    last = e.to_string();
                    tokio::time::sleep(self.client.policy.backoff(attempt)).await;
                    if let Some(t) = lookup().await? {
                        return Ok((t, true));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::RetriesExhausted { attempts: CREATE_ATTEMPTS, last: format!("creating {what}: {last}") })
    }

    /// Wait until a GET answers 404 (bounded).
    async fn wait_gone(&self, kind: ResourceKind, id: u64) -> Result<()> {
        let start = Instant::now();
        let mut interval = self.poll.interval;
        loop {
            let r = match kind {
                ResourceKind::Server => self.get_server(id).await.map(|_| ()),
                ResourceKind::Firewall => self.get_firewall(id).await.map(|_| ()),
                ResourceKind::SshKey => self.get_ssh_key(id).await.map(|_| ()),
                // Record sets are gone when their delete action finished; the others when DELETE answered.
                ResourceKind::DnsRecord | ResourceKind::Snapshot | ResourceKind::Volume | ResourceKind::PrimaryIp => return Ok(()),
            };
            match r {
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            if start.elapsed() > self.poll.deadline {
                return Err(ProviderError::Timeout(format!("{kind} {id} still exists after deletion")));
            }
            tokio::time::sleep(interval).await;
            interval = interval.mul_f64(1.5).min(self.poll.max_interval);
        }
    }

    async fn delete_server_checked(&self, s: &Server) -> Result<()> {
        match self.client.delete(&format!("/servers/{}", s.id)).await {
            Ok(body) => {
                let env: ActionEnvelope = if body.is_empty() { ActionEnvelope::default() } else { serde_json::from_slice(&body).unwrap_or_default() };
                if let Some(a) = env.action {
                    self.wait_actions(&[a]).await?;
                }
            }
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
        self.wait_gone(ResourceKind::Server, s.id).await
    }

    async fn delete_firewall_checked(&self, fw: &Firewall) -> Result<()> {
        // Detach from servers that are still attached (they normally are gone by now), but only
        // from our own: a server without our label keeps its firewall, and so its exposure.
        let attached = self.servers_using(fw).await?;
        let servers: Vec<Value> = attached.iter().map(|s| json!({"type": "server", "server": {"id": s.id}})).collect();
        if !servers.is_empty() {
            let r: Result<ActionsEnvelope> = self
                .client
                .post(&format!("/firewalls/{}/actions/remove_from_resources", fw.id), &json!({"remove_from": servers}), Retry::Idempotent)
                .await;
            match r {
                Ok(env) => self.wait_actions(&env.actions).await?,
                Err(e) if e.is_not_found() => return Ok(()),
                // Already detached (the server went away): go on to the delete.
                Err(e) => tracing::warn!("detaching firewall {}: {e}", fw.id),
            }
        }
        self.delete_firewall_when_free(fw.id).await?;
        self.wait_gone(ResourceKind::Firewall, fw.id).await
    }

    /// The managed servers a firewall is applied to; Err when one of them is not ours.
    async fn servers_using(&self, fw: &Firewall) -> Result<Vec<Server>> {
        let mut ours = Vec::new();
        for id in fw.applied_to.iter().filter(|a| a.kind == "server").filter_map(|a| a.server.as_ref()).map(|s| s.id) {
            match self.get_server(id).await {
                Ok(s) if is_managed(&s.labels) => ours.push(s),
                Ok(s) => {
                    return Err(ProviderError::Conflict(format!(
                        "firewall {} ({}) is in use by server {} ({}), which does not carry munero-managed=true;                          kept, and that server left as it is: detach it there by hand if the firewall should go",
                        fw.name, fw.id, s.name, s.id
                    )))
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ours)
    }

    /// DELETE a firewall; while the API says it is in use (a server deletion still settling),
    /// wait and retry, unless what holds it is a server that is not ours.
    async fn delete_firewall_when_free(&self, id: u64) -> Result<()> {
        let start = Instant::now();
        let mut interval = self.poll.interval;
        loop {
            match self.client.delete(&format!("/firewalls/{id}")).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) if in_use(&e) && start.elapsed() < self.poll.deadline => {
                    let fw = match self.get_firewall(id).await {
                        Ok(fw) => fw,
                        Err(e) if e.is_not_found() => return Ok(()),
                        Err(e) => return Err(e),
                    };
                    self.servers_using(&fw).await?;
                    tracing::warn!("firewall {id} still in use; waiting");
                    tokio::time::sleep(interval).await;
                    interval = interval.mul_f64(1.5).min(self.poll.max_interval);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Delete listed servers concurrently, then wait for all their delete actions in one loop.
    async fn delete_servers_listed(&self, ids: &[u64], in_flight: usize) -> Vec<Result<()>> {
        use futures::stream::{self, StreamExt};
        let started: Vec<Result<Option<Action>>> = stream::iter(ids.iter().copied())
            .map(|id| async move {
                match self.client.delete(&format!("/servers/{id}")).await {
                    Ok(body) if body.is_empty() => Ok(None),
                    Ok(body) => Ok(serde_json::from_slice::<ActionEnvelope>(&body).unwrap_or_default().action),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(in_flight.max(1))
            .collect()
            .await;
        let actions: Vec<Action> = started.iter().filter_map(|r| r.as_ref().ok().cloned().flatten()).collect();
        if self.wait_actions(&actions).await.is_ok() {
            return started.into_iter().map(|r| r.map(|_| ())).collect();
        }
        // Some action failed or timed out: find out which, one by one.
        let mut out = Vec::with_capacity(started.len());
        for r in started {
            out.push(match r {
                Ok(Some(a)) => self.wait_actions(&[a]).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            });
        }
        out
    }

    async fn delete_ssh_key_checked(&self, k: &SshKey) -> Result<()> {
        match self.client.delete(&format!("/ssh_keys/{}", k.id)).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
        self.wait_gone(ResourceKind::SshKey, k.id).await
    }
}

fn kind_nf(e: ProviderError, kind: &str, id: u64) -> ProviderError {
    match e {
        ProviderError::NotFound { .. } => ProviderError::NotFound { kind: kind.into(), id: id.to_string() },
        other => other,
    }
}

fn outcome_unknown(e: &ProviderError) -> bool {
    match e {
        ProviderError::Api { status, .. } => *status >= 500,
        ProviderError::Timeout(_) | ProviderError::Transport(_) => true,
        _ => false,
    }
}

fn in_use(e: &ProviderError) -> bool {
    let s = e.to_string();
    s.contains("resource_in_use") || s.contains("in use") || matches!(e, ProviderError::Conflict(_))
}

fn parse_id(kind: &str, id: &str) -> Result<u64> {
    id.parse().map_err(|_| ProviderError::Invalid(format!("{kind} id {id:?} is not a Hetzner id (a number)")))
}

/// A server's IPv6 address: `::1` of the /64 it is given (`2001:db8:1::/64` -> `2001:db8:1::1`).
fn first_address(net: &str) -> Option<String> {
    let base: std::net::Ipv6Addr = net.split('/').next()?.parse().ok()?;
    let mut seg = base.segments();
    seg[7] = 1;
    Some(std::net::Ipv6Addr::from(seg).to_string())
}

fn server_info(s: &Server) -> ServerInfo {
    ServerInfo {
        id: s.id.to_string(),
        name: s.name.clone(),
        ipv4: s.public_net.ipv4.as_ref().map(|i| i.ip.clone()).filter(|ip| !ip.is_empty()),
        ipv6: s.public_net.ipv6.as_ref().and_then(|i| first_address(&i.ip)),
        status: s.status.clone(),
        labels: s.labels.clone(),
        server_type: s.server_type.name.clone(),
        location: Some(s.location.name.clone()).filter(|n| !n.is_empty()),
    }
}

fn rule_json(r: &FirewallRule) -> Value {
    let mut v = json!({
        "direction": r.direction,
        "protocol": r.protocol,
        "source_ips": r.source_ips,
        "description": r.description,
    });
    if let Some(p) = &r.port {
        v["port"] = json!(p);
    }
    v
}

fn conflict_hint(e: ProviderError, kind: &str, name: &str) -> ProviderError {
    match e {
        ProviderError::Conflict(m) => ProviderError::Conflict(format!(
            "{m}. A {kind} named {name} already exists without this trial's munero labels; it is not ours \
             and is left alone: rename or remove it, or choose another trial name"
        )),
        other => other,
    }
}

#[async_trait]
impl Provider for HetznerProvider {
    fn name(&self) -> &'static str {
        "hetzner"
    }

    async fn price(&self, server_type: &str, location: Option<&str>) -> Result<Option<PriceQuote>> {
        let v: Value = self.client.get("/server_types", &[("name", server_type.to_string())]).await?;
        let types: Vec<ServerType> = serde_json::from_value(v["server_types"].clone())
            .map_err(|e| ProviderError::Other(format!("decoding /server_types: {e}")))?;
        let Some(st) = types.into_iter().find(|t| t.name == server_type) else { return Ok(None) };
        // Without a chosen location the API picks one; the first listed stands for it.
        let Some(sp) = st.prices.iter().find(|p| location.map_or(true, |l| p.location == l)) else { return Ok(None) };
        let loc = sp.location.clone();
        let pricing: PricingEnvelope = self.client.get("/pricing", &[]).await?;
        let ip = pricing
            .pricing
            .primary_ips
            .iter()
            .find(|p| p.ip_type == "ipv4")
            .and_then(|p| p.prices.iter().find(|x| x.location == loc));
        let num = |s: &str| s.trim().parse::<f64>().unwrap_or(0.0);
        let mut hourly = num(&sp.price_hourly.net);
        let mut monthly = num(&sp.price_monthly.net);
        let mut parts = vec![format!("server type {server_type} in {loc}")];
        if let Some(ip) = ip {
            hourly += num(&ip.price_hourly.net);
            monthly += num(&ip.price_monthly.net);
            parts.push("primary IPv4".into());
        }
        Ok(Some(PriceQuote {
            currency: if pricing.pricing.currency.is_empty() { "EUR".into() } else { pricing.pricing.currency },
            hourly,
            monthly_cap: Some(monthly),
            parts,
            source: "Hetzner API (server_types prices, pricing primary_ips), net of VAT".into(),
        }))
    }

    async fn check_access(&self) -> Result<Option<i64>> {
        let _: Value = self.client.get("/locations", &[]).await?;
        Ok(self.client.last_date().and_then(|d| parse_http_date(&d)))
    }

    async fn check_server_type(&self, server_type: &str) -> Result<()> {
        let types: Vec<ServerType> = self.list_all("/server_types", "server_types", None).await?;
        if types.iter().any(|t| t.name == server_type) {
            return Ok(());
        }
        let mut names: Vec<&str> = types.iter().filter(|t| t.deprecated != Some(true)).map(|t| t.name.as_str()).collect();
        names.sort();
        Err(ProviderError::Invalid(format!(
            "server type {server_type:?} does not exist at Hetzner; use --size cpu or one of: {}",
            names.join(", ")
        )))
    }

    async fn check_placement(&self, image: &str, location: Option<&str>) -> Result<()> {
        if let Some(loc) = location {
            let locs: Vec<Named> = self.list_all("/locations", "locations", None).await?;
            if !locs.iter().any(|l| l.name == loc) {
                let mut names: Vec<&str> = locs.iter().map(|l| l.name.as_str()).collect();
                names.sort();
                return Err(ProviderError::Invalid(format!(
                    "location {loc:?} does not exist at Hetzner; use one of: {}",
                    names.join(", ")
                )));
            }
        }
        // An image is a name (system images) or an id (snapshots).
        let found = if let Ok(id) = image.parse::<u64>() {
            match self.client.get::<ImageEnvelope>(&format!("/images/{id}"), &[]).await {
                Ok(_) => true,
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(e),
            }
        } else {
            let v: Value = self.client.get("/images", &[("name", image.to_string())]).await?;
            v.get("images").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
        };
        if !found {
            return Err(ProviderError::Invalid(format!(
                "image {image:?} does not exist at Hetzner; use a system image name such as ubuntu-24.04 or debian-12, or a snapshot id"
            )));
        }
        Ok(())
    }

    async fn ensure_ssh_key(&self, spec: &SshKeySpec) -> Result<Ensured> {
        let trial = spec.labels.get(munero_provider::LABEL_TRIAL).cloned().unwrap_or_default();
        if let Some(k) = self.find_ssh_key(&spec.name, &trial).await? {
            if k.public_key.trim() == spec.public_key.trim() || k.public_key.is_empty() {
                return Ok(Ensured { id: k.id.to_string(), created: false });
            }
            // Ours, but for a key we no longer hold: replace it.
            tracing::warn!("ssh key {} holds another public key; replacing it", k.name);
            self.delete_ssh_key_checked(&k).await?;
        }
        let body = json!({"name": spec.name, "public_key": spec.public_key.trim(), "labels": spec.labels});
        let (k, created) = self
            .create_or_find(
                "ssh key",
                || async {
                    let e: SshKeyEnvelope = self
                        .client
                        .post("/ssh_keys", &body, Retry::RateLimitOnly)
                        .await
                        .map_err(|e| conflict_hint(e, "ssh key", &spec.name))?;
                    Ok(e.ssh_key)
                },
                || self.find_ssh_key(&spec.name, &trial),
            )
            .await?;
        Ok(Ensured { id: k.id.to_string(), created })
    }

    async fn ensure_firewall(&self, spec: &FirewallSpec) -> Result<Ensured> {
        let trial = spec.labels.get(munero_provider::LABEL_TRIAL).cloned().unwrap_or_default();
        let rules: Vec<Value> = spec.rules.iter().map(rule_json).collect();
        if let Some(fw) = self.find_firewall(&spec.name, &trial).await? {
            // Make the rules match the spec (e.g. a new --ssh-from on a resumed create).
            let env: ActionsEnvelope = self
                .client
                .post(&format!("/firewalls/{}/actions/set_rules", fw.id), &json!({"rules": rules}), Retry::Idempotent)
                .await?;
            self.wait_actions(&env.actions).await?;
            return Ok(Ensured { id: fw.id.to_string(), created: false });
        }
        let body = json!({"name": spec.name, "labels": spec.labels, "rules": rules});
        let (fw, created) = self
            .create_or_find(
                "firewall",
                || async {
                    let e: FirewallEnvelope = self
                        .client
                        .post("/firewalls", &body, Retry::RateLimitOnly)
                        .await
                        .map_err(|e| conflict_hint(e, "firewall", &spec.name))?;
                    self.wait_actions(&e.actions).await?;
                    Ok(e.firewall)
                },
                || self.find_firewall(&spec.name, &trial),
            )
            .await?;
        Ok(Ensured { id: fw.id.to_string(), created })
    }

    async fn attach_firewall(&self, firewall_id: &str, server_id: &str) -> Result<()> {
        let fw = parse_id("firewall", firewall_id)?;
        let sv = parse_id("server", server_id)?;
        let s = self.get_server(sv).await?;
        if s.public_net.firewalls.iter().any(|f| f.id == fw) {
            return Ok(());
        }
        let body = json!({"apply_to": [{"type": "server", "server": {"id": sv}}]});
        match self.client.post::<ActionsEnvelope>(&format!("/firewalls/{fw}/actions/apply_to_resources"), &body, Retry::Idempotent).await {
            Ok(env) => self.wait_actions(&env.actions).await,
            Err(e) if e.to_string().contains("firewall_already_applied") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn find_server(&self, trial: &str) -> Result<Option<ServerInfo>> {
        Ok(self.find_server_raw(trial, trial).await?.as_ref().map(server_info))
    }

    async fn create_server(&self, spec: &ServerSpec) -> Result<ServerInfo> {
        let trial = spec.labels.get(munero_provider::LABEL_TRIAL).cloned().unwrap_or_default();
        let firewalls: Vec<Value> = spec
            .firewall_ids
            .iter()
            .map(|id| parse_id("firewall", id).map(|n| json!({"firewall": n})))
            .collect::<Result<_>>()?;
        let mut body = json!({
            "name": spec.name,
            "server_type": spec.server_type,
            "image": spec.image,
            "user_data": spec.user_data,
            "labels": spec.labels,
            // Key names: the API takes ids or names, and the published schema types them as strings.
            "ssh_keys": spec.ssh_key_ids,
            "firewalls": firewalls,
            "public_net": {"enable_ipv4": true, "enable_ipv6": true},
            "start_after_create": true,
        });
        if let Some(l) = &spec.location {
            body["location"] = json!(l);
        }
        let (server, created) = self
            .create_or_find(
                "server",
                || async {
                    let r: CreateServerResponse = self
                        .client
                        .post("/servers", &body, Retry::RateLimitOnly)
                        .await
                        .map_err(|e| conflict_hint(e, "server", &spec.name))?;
                    let mut actions: Vec<Action> = r.action.into_iter().collect();
                    actions.extend(r.next_actions);
                    self.wait_actions(&actions).await.map_err(|e| match e {
                        // Report which server the failed action belongs to, so the caller can clean up.
                        ProviderError::ActionFailed { command, code, message } => ProviderError::ActionFailed {
                            command,
                            code,
                            message: format!("{message} (server {})", r.server.id),
                        },
                        other => other,
                    })?;
                    Ok(r.server)
                },
                || self.find_server_raw(&spec.name, &trial),
            )
            .await?;
        let _ = created;
        Ok(server_info(&server))
    }

    async fn wait_running(&self, id: &str) -> Result<ServerInfo> {
        let n = parse_id("server", id)?;
        let start = Instant::now();
        let mut interval = self.poll.interval;
        loop {
            let s = self.get_server(n).await?;
            let info = server_info(&s);
            if s.status == "running" && info.ipv4.is_some() {
                return Ok(info);
            }
            if start.elapsed() > self.poll.deadline {
                return Err(ProviderError::Timeout(format!(
                    "server {id} is {:?} without a running state and public IPv4 after {}s",
                    s.status,
                    self.poll.deadline.as_secs()
                )));
            }
            tokio::time::sleep(interval).await;
            interval = interval.mul_f64(1.5).min(self.poll.max_interval);
        }
    }

    async fn create_snapshot(&self, server_id: &str, description: &str, labels: &munero_provider::Labels) -> Result<Resource> {
        self.snapshot_create(server_id, description, labels).await
    }

    async fn lookup(&self, kind: ResourceKind, id: &str) -> Result<munero_provider::Lookup> {
        self.lookup_fresh(kind, id).await
    }

    async fn list_managed_servers(&self) -> Result<Vec<ServerInfo>> {
        let servers: Vec<Server> = self.list_all("/servers", "servers", Some(&managed_selector())).await?;
        Ok(servers.iter().filter(|s| is_managed(&s.labels)).map(server_info).collect())
    }

    async fn find_zone(&self, fqdn: &str) -> Result<Option<Zone>> {
        self.dns_find_zone(fqdn).await
    }

    async fn get_record(&self, zone_id: &str, name: &str, rtype: &str) -> Result<Option<RecordSet>> {
        self.dns_get_record(zone_id, name, rtype).await
    }

    async fn create_record(&self, record: &RecordSet, ttl: u32) -> Result<()> {
        self.dns_create_record(record, ttl).await
    }

    async fn set_labels(&self, kind: ResourceKind, id: &str, labels: &munero_provider::Labels) -> Result<()> {
        if !is_managed(labels) {
            return Err(ProviderError::Invalid(format!("new labels for {kind} {id} lack munero-managed=true")));
        }
        let body = json!({ "labels": labels });
        let current = match kind {
            ResourceKind::DnsRecord => return self.dns_set_labels(id, labels).await,
            ResourceKind::Server => self.get_server(parse_id("server", id)?).await?.labels,
            ResourceKind::Firewall => self.get_firewall(parse_id("firewall", id)?).await?.labels,
            ResourceKind::SshKey => self.get_ssh_key(parse_id("ssh key", id)?).await?.labels,
            _ => return self.storage_set_labels(kind, id, labels).await,
        };
        if !is_managed(&current) {
            return Err(ProviderError::Invalid(format!("{kind} {id} does not carry munero-managed=true; not changing it")));
        }
        let path = match kind {
            ResourceKind::Server => format!("/servers/{id}"),
            ResourceKind::Firewall => format!("/firewalls/{id}"),
            _ => format!("/ssh_keys/{id}"),
        };
        self.client.put::<Value>(&path, &body).await.map(|_| ())
    }

    async fn list_managed_resources(&self) -> Result<Vec<Resource>> {
        let sel = managed_selector();
        let (fws, keys, records, storage) = tokio::join!(
            self.list_all::<Firewall>("/firewalls", "firewalls", Some(&sel)),
            self.list_all::<SshKey>("/ssh_keys", "ssh_keys", Some(&sel)),
            self.dns_managed_records(),
            self.storage_listed(&sel)
        );
        let mut out = Vec::new();
        out.extend(fws?.into_iter().filter(|f| is_managed(&f.labels)).map(|f| Resource {
            kind: ResourceKind::Firewall,
            id: f.id.to_string(),
            name: f.name,
            labels: f.labels,
        }));
        out.extend(keys?.into_iter().filter(|k| is_managed(&k.labels)).map(|k| Resource {
            kind: ResourceKind::SshKey,
            id: k.id.to_string(),
            name: k.name,
            labels: k.labels,
        }));
        out.extend(records?);
        out.extend(storage?);
        Ok(out)
    }

    async fn delete_resource(&self, kind: ResourceKind, id: &str) -> Result<()> {
        match kind {
            ResourceKind::DnsRecord => return self.dns_delete_record(id).await,
            ResourceKind::Snapshot | ResourceKind::Volume | ResourceKind::PrimaryIp => return self.storage_delete(kind, id).await,
            _ => {}
        }
        let n = parse_id(&kind.to_string(), id)?;
        let refuse = |name: &str| {
            Err(ProviderError::Invalid(format!("{kind} {id} ({name}) does not carry munero-managed=true; not deleting it")))
        };
        let r = match kind {
            ResourceKind::Server => match self.get_server(n).await {
                Ok(s) if !is_managed(&s.labels) => return refuse(&s.name),
                Ok(s) => self.delete_server_checked(&s).await,
                Err(e) => Err(e),
            },
            ResourceKind::Firewall => match self.get_firewall(n).await {
                Ok(f) if !is_managed(&f.labels) => return refuse(&f.name),
                Ok(f) => self.delete_firewall_checked(&f).await,
                Err(e) => Err(e),
            },
            ResourceKind::SshKey => match self.get_ssh_key(n).await {
                Ok(k) if !is_managed(&k.labels) => return refuse(&k.name),
                Ok(k) => self.delete_ssh_key_checked(&k).await,
                Err(e) => Err(e),
            },
            _ => unreachable!("handled above"),
        };
        match r {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    async fn delete_listed(&self, resources: &[Resource], in_flight: usize) -> Vec<Result<()>> {
        use futures::stream::{self, StreamExt};
        let refuse = |r: &Resource| {
            ProviderError::Invalid(format!("{} {} ({}) does not carry munero-managed=true; not deleting it", r.kind, r.id, r.name))
        };
        let mut out: Vec<Option<Result<()>>> = resources.iter().map(|_| None).collect();
        let mut servers = Vec::new();
        let mut others = Vec::new();
        let mut records = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            if r.kind == ResourceKind::DnsRecord && is_managed(&r.labels) {
                records.push((i, r.id.clone()));
                continue;
            }
            match (is_managed(&r.labels), parse_id(&r.kind.to_string(), &r.id)) {
                (false, _) => out[i] = Some(Err(refuse(r))),
                (true, Err(e)) => out[i] = Some(Err(e)),
                (true, Ok(id)) if r.kind == ResourceKind::Server => servers.push((i, id)),
                (true, Ok(id)) => others.push((i, r.kind, id)),
            }
        }
        // Names first: the address they point at may pass to someone else once the server goes.
        for (i, id) in records {
            out[i] = Some(self.dns_delete_record(&id).await);
        }
        let ids: Vec<u64> = servers.iter().map(|(_, id)| *id).collect();
        for ((i, _), r) in servers.iter().zip(self.delete_servers_listed(&ids, in_flight).await) {
            out[*i] = Some(r);
        }
        let done: Vec<(usize, Result<()>)> = stream::iter(others)
            .map(|(i, kind, id)| async move {
                let r = match kind {
                    ResourceKind::Firewall => self.delete_firewall_when_free(id).await,
                    ResourceKind::Snapshot | ResourceKind::Volume | ResourceKind::PrimaryIp => {
                        self.storage_delete(kind, &id.to_string()).await
                    }
                    _ => match self.client.delete(&format!("/ssh_keys/{id}")).await {
                        Ok(_) => Ok(()),
                        Err(e) if e.is_not_found() => Ok(()),
                        Err(e) => Err(e),
                    },
                };
                (i, r)
            })
            .buffered(in_flight.max(1))
            .collect()
            .await;
        for (i, r) in done {
            out[i] = Some(r);
        }
        out.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, hms, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = MONTHS.iter().position(|x| x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [h, mi, se] = t.as_slice() else { return None };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod address_tests {
    #[test]
    fn the_servers_ipv6_address_is_the_first_of_its_network() {
        assert_eq!(super::first_address("2001:db8:1::/64").as_deref(), Some("2001:db8:1::1"));
        assert_eq!(super::first_address("garbage"), None);
    }
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn http_dates_parse_to_unix_seconds() {
        assert_eq!(super::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(super::parse_http_date("Thu, 01 Jan 2026 00:00:00 GMT"), Some(1_767_225_600));
        assert_eq!(super::parse_http_date("yesterday"), None);
    }
}
