//! The receipt's provider half: each deleted resource looked up afresh (the provider's own 404),
//! and the orphan sweep over every labelled resource type of the trial.

use std::collections::BTreeSet;

use anyhow::Result;
use munero_provider::{Provider, ProviderKind, ResourceKind};

use crate::ctx::Ctx;
use crate::hosts::resources;
use crate::receipt::{Gone, Sweep};
use crate::timefmt::rfc3339;

/// `kind:id`, the key `known` sets hold.
pub fn key(kind: ResourceKind, id: &str) -> String {
    format!("{kind}:{id}")
}

pub async fn confirm(p: &dyn Provider, gone: &mut [Gone]) {
    for g in gone.iter_mut() {
        let at = time::OffsetDateTime::now_utc().unix_timestamp();
        match p.lookup(g.kind, &g.id).await {
            Ok(l) => {
                g.lookup = Some(l);
                g.checked_at = Some(rfc3339(at));
            }
            Err(e) => g.error = Some(format!("looking it up: {e}")),
        }
    }
}

pub async fn sweep(ctx: &Ctx, p: &dyn Provider, kind: ProviderKind, trial: &str, known: &BTreeSet<String>, keep: &[ResourceKind]) -> Result<Sweep> {
    let left = resources::trial_resources(p, trial).await?;
    let mut out = Sweep { kinds: ResourceKind::ALL.to_vec(), ..Default::default() };
    for r in left {
        if keep.contains(&r.kind) || known.contains(&key(r.kind, &r.id)) {
            out.kept.push(format!("{} {} (id {})", r.kind, r.name, r.id));
            continue;
        }
        ctx.out.progress(format!("      orphan: {} {} (id {}) labelled munero-trial={trial}: deleting it", r.kind, r.name, r.id));
        let mut g = Gone::new(&r, true);
        match p.delete_resource(r.kind, &r.id).await {
            Ok(()) => confirm(p, std::slice::from_mut(&mut g)).await,
            Err(e) => g.error = Some(format!("deleting it at {kind}: {e}")),
        }
        out.found.push(g);
    }
    Ok(out)
}
