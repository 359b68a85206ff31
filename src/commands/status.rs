//! `status [<TRIAL>]` (alias `list`): one row per trial, from local records refreshed from the
//! provider when credentials exist, plus managed servers that have no local record.

use std::collections::BTreeMap;

use anyhow::Result;
use munero_provider::{ProviderKind, ServerInfo};
use serde::Serialize;
use serde_json::json;

use crate::cli::StatusArgs;
use crate::timefmt::rfc3339;
use crate::error::usage;
use crate::output::{table, Report};
use crate::ctx::Ctx;
use crate::hosts::cloud::snapshot::Snapshot;
use crate::{cost, hosts, validate};

#[derive(Debug, Serialize)]
pub struct Row {
    pub trial: String,
    pub provider: ProviderKind,
    pub server_type: String,
    pub ipv4: Option<String>,
    pub state: String,
    pub expires: Option<String>,
    pub expires_unix: Option<i64>,
    pub expired: bool,
    /// Expires within the next 24 hours (what `teardown --warn-before 24h` announces).
    pub expires_soon: bool,
    pub local_record: bool,
    pub server_id: Option<String>,
    /// Hourly price and the cost accrued since creation (None: no price known for this kind).
    pub cost: Option<cost::Cost>,
    /// The trial's provider snapshots, oldest first.
    pub snapshots: Vec<Snapshot>,
    /// The model's speed as the last smoke measured it on the trial's own hardware.
    pub model_speed: Option<crate::model_speed::ModelSpeed>,
}

pub async fn run(ctx: &Ctx, args: &StatusArgs) -> Result<Report> {
    if let Some(t) = &args.trial {
        validate::trial_name(t)?;
    }
    let now = ctx.now.unix_timestamp();
    let records = ctx.store.list()?;
    // provider name -> trial -> server (None when listing failed)
    let mut live: BTreeMap<ProviderKind, Option<BTreeMap<String, ServerInfo>>> = BTreeMap::new();
    let hosts = hosts::configured(&records)?;
    // (provider, trial) -> its snapshots
    let mut snaps: BTreeMap<(ProviderKind, String), Vec<Snapshot>> = BTreeMap::new();
    for h in &hosts {
        match h.snapshots(ctx).await {
            Ok(list) => {
                for r in list {
                    if let Some(t) = r.trial() {
                        snaps.entry((h.kind(), t.to_string())).or_default().push(Snapshot::of(&r));
                    }
                }
            }
            Err(e) => ctx.out.progress(format!("warning: could not list {} snapshots: {e:#}", h.kind())),
        }
    }
    for v in snaps.values_mut() {
        v.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    }
    for h in &hosts {
        match h.servers(ctx).await {
            Ok(Some(servers)) => {
                let m = servers.into_iter().filter_map(|s| s.trial().map(str::to_string).map(|t| (t, s))).collect();
                live.insert(h.kind(), Some(m));
            }
            // A kind without an API: its records are all there is.
            Ok(None) => {}
            Err(e) => {
                ctx.out.progress(format!("warning: could not list {} servers: {e:#}", h.kind()));
                live.insert(h.kind(), None);
            }
        }
    }
    let mut rows = Vec::new();
    let mut prices = BTreeMap::new();
    for t in &records {
        let (state, ipv4, stype, sid, loc) = match live.get(&t.provider) {
            Some(Some(m)) => match m.get(&t.name) {
                Some(s) => {
                    // Keep the local cache in step with the provider (the address deploy uses).
                    if t.ipv4 != s.ipv4 || t.state != s.status || t.resources.server_id.as_deref() != Some(s.id.as_str()) {
                        let mut fresh = t.clone();
                        fresh.ipv4 = s.ipv4.clone();
                        fresh.state = s.status.clone();
                        fresh.resources.server_id = Some(s.id.clone());
                        if let Err(e) = ctx.store.save(&fresh) {
                            ctx.out.progress(format!("warning: could not update the record of {}: {e:#}", t.name));
                        }
                    }
                    (s.status.clone(), s.ipv4.clone(), s.server_type.clone(), Some(s.id.clone()), s.location.clone().or(t.location.clone()))
                }
                None => ("gone".to_string(), None, t.server_type.clone(), None, t.location.clone()),
            },
            Some(None) => (format!("{} (provider unreachable)", t.state), t.ipv4.clone(), t.server_type.clone(), t.resources.server_id.clone(), t.location.clone()),
            None => (format!("{} (local record)", t.state), t.ipv4.clone(), t.server_type.clone(), t.resources.server_id.clone(), t.location.clone()),
        };
        let gone = state == "gone";
        let cost = if gone { None } else { trial_cost(ctx, &hosts, &mut prices, t.provider, &stype, loc.as_deref(), t.created_unix, now).await };
        rows.push(Row {
            trial: t.name.clone(),
            provider: t.provider,
            server_type: stype,
            ipv4,
            state,
            expires: Some(t.expires.clone()),
            expires_unix: Some(t.expires_unix),
            expired: t.expires_unix < now,
            expires_soon: soon(t.expires_unix, now),
            local_record: true,
            server_id: sid,
            cost,
            snapshots: snaps.remove(&(t.provider, t.name.clone())).unwrap_or_default(),
            model_speed: crate::model_speed::load(&ctx.store.trial_dir(&t.name)),
        });
    }
    for (prov, m) in &live {
        let Some(m) = m else { continue };
        for (trial, s) in m {
            if records.iter().any(|r| &r.name == trial && r.provider == *prov) {
                continue;
            }
            let e = s.expires();
            rows.push(Row {
                trial: trial.clone(),
                provider: *prov,
                server_type: s.server_type.clone(),
                ipv4: s.ipv4.clone(),
                state: format!("{} (no local record)", s.status),
                expires: e.map(rfc3339),
                expires_unix: e,
                expired: e.is_some_and(|e| e < now),
                expires_soon: e.is_some_and(|e| soon(e, now)),
                local_record: false,
                server_id: Some(s.id.clone()),
                cost: None,
                snapshots: snaps.remove(&(*prov, trial.clone())).unwrap_or_default(),
                model_speed: None,
            });
        }
    }
    // Snapshots whose trial is gone otherwise (destroyed with --keep-snapshots) still get a row.
    for ((prov, trial), list) in snaps {
        rows.push(Row {
            trial,
            provider: prov,
            server_type: "-".into(),
            ipv4: None,
            state: "snapshots only".into(),
            expires: None,
            expires_unix: None,
            expired: false,
            expires_soon: false,
            local_record: false,
            server_id: None,
            cost: None,
            snapshots: list,
            model_speed: None,
        });
    }
    if let Some(t) = &args.trial {
        rows.retain(|r| &r.trial == t);
        if rows.is_empty() {
            return Err(usage(format!("no trial named {t}; run `munero-infra status` to list them")));
        }
    }
    rows.sort_by(|a, b| a.trial.cmp(&b.trial).then(a.provider.cmp(&b.provider)));
    let human = if rows.is_empty() {
        "No trials.".to_string()
    } else {
        table(
            &["TRIAL", "PROVIDER", "TYPE", "IPV4", "STATE", "EXPIRES", "PRICE", "ACCRUED", "MODEL TOK/S"],
            &rows
                .iter()
                .map(|r| {
                    vec![
                        r.trial.clone(),
                        r.provider.to_string(),
                        r.server_type.clone(),
                        r.ipv4.clone().unwrap_or_else(|| "-".into()),
                        r.state.clone(),
                        format!(
                            "{}{}",
                            r.expires.clone().unwrap_or_else(|| "-".into()),
                            match (r.expired, r.expires_soon, r.expires_unix) {
                                (true, _, _) => " (expired)".to_string(),
                                (false, true, Some(e)) => format!(" (in {} h)", (e - now + 3599) / 3600),
                                _ => String::new(),
                            }
                        ),
                        r.cost.as_ref().map(cost::per_hour).unwrap_or_else(|| "no price".into()),
                        r.cost.as_ref().map(|c| format!("{} ({} h)", cost::money(c.amount, &c.currency), c.hours)).unwrap_or_else(|| "-".into()),
                        r.model_speed.as_ref().map(|m| format!("{:.1}", m.tokens_per_s)).unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect::<Vec<_>>(),
        ) + &crate::hosts::cloud::snapshot::listing(rows.iter().flat_map(|r| r.snapshots.iter().map(move |s| (r.provider, r.trial.as_str(), s))))
    };
    Ok(Report::new(json!({"ok": true, "command": "status", "trials": rows}), human))
}

/// Within the next 24 hours.
fn soon(expires: i64, now: i64) -> bool {
    expires >= now && expires - now <= 24 * 3600
}

type PriceCache = BTreeMap<(ProviderKind, String, Option<String>), Option<munero_provider::PriceQuote>>;

/// The trial's price from its kind of host (asked once per type and location), and what it has
/// cost since it was created. A price that cannot be had is a warning, not a failed status.
async fn trial_cost(
    ctx: &Ctx,
    hosts: &[Box<dyn hosts::Host>],
    cache: &mut PriceCache,
    kind: ProviderKind,
    server_type: &str,
    location: Option<&str>,
    created_unix: i64,
    now: i64,
) -> Option<cost::Cost> {
    let key = (kind, server_type.to_string(), location.map(str::to_string));
    if !cache.contains_key(&key) {
        let q = match hosts.iter().find(|h| h.kind() == kind) {
            Some(h) => h.price(server_type, location).await.unwrap_or_else(|e| {
                ctx.out.progress(format!("warning: no price for {server_type}: {e:#}"));
                None
            }),
            None => cost::table_price(kind, server_type),
        };
        cache.insert(key.clone(), q);
    }
    let q = cache.get(&key)?.as_ref()?;
    (created_unix > 0).then(|| cost::cost(q, created_unix, now))
}
