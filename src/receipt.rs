//! Wipe and destroy receipts: what a client can be shown as the wipe confirmation. One JSON and
//! one text file per wipe or destroy in `<state>/receipts/<trial>/` (0600, outside the trial's
//! directory so they outlive destroy); `receipt <TRIAL>` prints the latest. Building and
//! rendering are pure; only `save` and `load_latest` touch files.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use munero_provider::{Lookup, ProviderKind, Resource, ResourceKind};
use serde::{Deserialize, Serialize};

/// The client's dataset as the last deploy uploaded it (from the trial's history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub sha256: String,
    pub bytes: Option<u64>,
    /// When that deploy ran.
    pub deployed: String,
}

/// One provider resource and the provider's fresh word on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gone {
    pub kind: ResourceKind,
    pub id: String,
    pub name: String,
    /// The trial's record did not know it (left over by an earlier run, or made by hand).
    #[serde(default)]
    pub orphan: bool,
    /// The lookup after deletion; None when it could not be made (`error` says why).
    pub lookup: Option<Lookup>,
    /// When the lookup was sent (RFC 3339).
    pub checked_at: Option<String>,
    pub error: Option<String>,
}

impl Gone {
    pub fn new(r: &Resource, orphan: bool) -> Gone {
        Gone { kind: r.kind, id: r.id.clone(), name: r.name.clone(), orphan, lookup: None, checked_at: None, error: None }
    }
    pub fn confirmed(&self) -> bool {
        self.lookup.as_ref().is_some_and(|l| l.gone)
    }
}

/// The sweep over every labelled resource type of the trial after the wipe or destroy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// The resource types listed (empty: the host has no provider API to ask).
    pub kinds: Vec<ResourceKind>,
    /// Orphans found: each removed (or the error that kept it).
    pub found: Vec<Gone>,
    /// Kept on purpose and why (a live trial's server, snapshots with --keep-snapshots).
    pub kept: Vec<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub trial: String,
    pub provider: ProviderKind,
    /// "wipe", "destroy" or "teardown" (a destroy at expiry, by the scheduled job).
    pub action: String,
    /// When the wipe or destroy finished (RFC 3339).
    pub time: String,
    pub operator: String,
    pub dataset: Option<Dataset>,
    /// What was removed on the host itself (volumes, files, the whole disk).
    pub on_host: Vec<String>,
    /// Provider resources deleted, each with its lookup.
    pub resources: Vec<Gone>,
    pub sweep: Sweep,
}

impl Receipt {
    /// Complete: every deleted resource and every orphan confirmed gone by the provider.
    pub fn complete(&self) -> bool {
        self.resources.iter().chain(&self.sweep.found).all(Gone::confirmed)
    }

    /// The receipt for people (and for the client): plain text, one fact a line.
    pub fn render_text(&self) -> String {
        let mut out = vec![
            format!("munero {} receipt", self.action),
            format!("trial:      {}", self.trial),
            format!("provider:   {}", self.provider),
            format!("{:<11} {}", format!("{}:", if self.action == "wipe" { "wiped" } else { "destroyed" }), self.time),
            format!("operator:   {}", self.operator),
        ];
        match &self.dataset {
            Some(d) => out.push(format!(
                "dataset:    sha256 {}{} (as deployed {})",
                d.sha256,
                d.bytes.map(|b| format!(", {b} bytes")).unwrap_or_default(),
                d.deployed
            )),
            None => out.push("dataset:    no deploy of client data is on record".into()),
        }
        out.push("on the host:".into());
        if self.on_host.is_empty() {
            out.push("  (nothing reported)".into());
        }
        out.extend(self.on_host.iter().map(|l| format!("  {l}")));
        if !self.resources.is_empty() {
            out.push(format!("{} resources, each looked up again after deletion:", self.provider));
            out.extend(self.resources.iter().map(gone_line));
        }
        out.push("orphan sweep:".into());
        if self.sweep.kinds.is_empty() {
            out.push(format!("  {}", self.sweep.note.as_deref().unwrap_or("not run")));
        } else {
            let kinds: Vec<String> = self.sweep.kinds.iter().map(|k| k.to_string()).collect();
            out.push(format!("  looked for: {}", kinds.join(", ")));
            if let Some(n) = &self.sweep.note {
                out.push(format!("  {n}"));
            }
            if self.sweep.found.is_empty() {
                out.push("  no orphan found".into());
            }
            out.extend(self.sweep.found.iter().map(gone_line));
            out.extend(self.sweep.kept.iter().map(|k| format!("  kept: {k}")));
        }
        out.push(format!(
            "result:     {}",
            if self.complete() { "COMPLETE - the provider confirms each resource gone" } else { "INCOMPLETE - see the lines above" }
        ));
        out.join("\n") + "\n"
    }
}

fn gone_line(g: &Gone) -> String {
    let what = format!("{} {} (id {}){}", g.kind, g.name, g.id, if g.orphan { " [orphan]" } else { "" });
    match (&g.lookup, &g.error) {
        (Some(l), _) => format!(
            "  {what}: {} -> {}{}",
            l.request,
            l.answer,
            g.checked_at.as_deref().map(|t| format!(" at {t}")).unwrap_or_default()
        ),
        (None, Some(e)) => format!("  {what}: NOT confirmed: {e}"),
        (None, None) => format!("  {what}: not looked up"),
    }
}

/// The latest deploy's dataset from the trial's history lines (newest last).
pub fn dataset_from_history(lines: &[String]) -> Option<Dataset> {
    lines.iter().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        if v["action"] != "deploy" || v["result"] != "ok" {
            return None;
        }
        Some(Dataset {
            sha256: v["data_sha256"].as_str()?.to_string(),
            bytes: v["data_bytes"].as_u64(),
            deployed: v["time"].as_str().unwrap_or("?").to_string(),
        })
    })
}

/// What the stack's wipe script reports as removed (`removed:` and `uploaded copy removed:`
/// lines, and its result line).
pub fn removed_on_host(wipe_output: &str) -> Vec<String> {
    wipe_output
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("removed:") || l.starts_with("uploaded copy removed:") || l.starts_with("result:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

pub fn dir(root: &Path, trial: &str) -> PathBuf {
    root.join("receipts").join(trial)
}

/// Write `<action>-<stamp>.json` and `.txt`; returns their paths.
pub fn save(root: &Path, r: &Receipt, stamp: &str) -> Result<(PathBuf, PathBuf)> {
    let d = dir(root, &r.trial);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&d).with_context(|| format!("creating {}", d.display()))?;
    let base = d.join(format!("{}-{stamp}", r.action));
    let (json, text) = (base.with_extension("json"), base.with_extension("txt"));
    crate::store::atomic_write(&json, serde_json::to_string_pretty(r)?.as_bytes(), 0o600)?;
    crate::store::atomic_write(&text, r.render_text().as_bytes(), 0o600)?;
    Ok((json, text))
}

/// Every receipt of the trial, oldest first (file names sort by time).
pub fn list(root: &Path, trial: &str) -> Result<Vec<PathBuf>> {
    let d = dir(root, trial);
    if !d.exists() {
        return Ok(Vec::new());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .with_context(|| format!("reading {}", d.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort_by_key(|p| p.file_name().map(|n| n.to_string_lossy().split_once('-').map(|(_, s)| s.to_string()).unwrap_or_default()));
    Ok(v)
}

pub fn load(path: &Path) -> Result<Receipt> {
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&s).with_context(|| format!("{} is not a receipt", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use munero_provider::trial_labels;

    fn receipt() -> Receipt {
        let fw = Resource { kind: ResourceKind::Firewall, id: "7".into(), name: "munero-t1".into(), labels: trial_labels("t1", 1) };
        let mut gone = Gone::new(&fw, false);
        gone.lookup = Some(Lookup { request: "GET /firewalls/7".into(), answer: "404 not_found".into(), gone: true });
        gone.checked_at = Some("2026-11-29T12:00:01Z".into());
        Receipt {
            trial: "t1".into(),
            provider: ProviderKind::Hetzner,
            action: "destroy".into(),
            time: "2026-11-29T12:00:00Z".into(),
            operator: "op@laptop".into(),
            dataset: Some(Dataset { sha256: "ab".repeat(32), bytes: Some(1234), deployed: "2026-11-28T09:00:00Z".into() }),
            on_host: vec!["server t1 deleted with its disk".into()],
            resources: vec![gone],
            sweep: Sweep { kinds: ResourceKind::ALL.to_vec(), ..Default::default() },
        }
    }

    #[test]
    fn a_receipt_is_complete_only_when_every_lookup_says_gone() {
        let mut r = receipt();
        assert!(r.complete());
        let text = r.render_text();
        assert!(text.contains("firewall munero-t1 (id 7): GET /firewalls/7 -> 404 not_found at 2026-11-29T12:00:01Z"), "{text}");
        assert!(text.contains(&format!("dataset:    sha256 {}, 1234 bytes", "ab".repeat(32))), "{text}");
        assert!(text.contains("no orphan found") && text.contains("result:     COMPLETE"), "{text}");
        r.sweep.found.push(Gone { error: Some("409 conflict".into()), ..Gone::new(&Resource { kind: ResourceKind::SshKey, id: "3".into(), name: "k".into(), labels: trial_labels("t1", 1) }, true) });
        assert!(!r.complete());
        let text = r.render_text();
        assert!(text.contains("ssh key k (id 3) [orphan]: NOT confirmed: 409 conflict") && text.contains("INCOMPLETE"), "{text}");
    }

    #[test]
    fn the_dataset_is_the_latest_successful_deploy_in_the_history() {
        let lines = vec![
            r#"{"time":"2026-11-27T10:00:00Z","action":"deploy","result":"ok","data_sha256":"aa","data_bytes":10}"#.to_string(),
            r#"{"time":"2026-11-28T10:00:00Z","action":"deploy","result":"ok","data_sha256":"bb"}"#.to_string(),
            r#"{"time":"2026-11-28T11:00:00Z","action":"deploy","result":"failed","data_sha256":"cc"}"#.to_string(),
            r#"{"time":"2026-11-28T12:00:00Z","action":"wipe","result":"ok"}"#.to_string(),
        ];
        let d = dataset_from_history(&lines).unwrap();
        assert_eq!((d.sha256.as_str(), d.bytes, d.deployed.as_str()), ("bb", None, "2026-11-28T10:00:00Z"));
        assert_eq!(dataset_from_history(&lines[3..]), None);
    }

    #[test]
    fn the_wipe_scripts_removed_lines_are_picked_out() {
        let out = "munero wipe receipt\nvolume:    p_client_data  (10 bytes in 1 files)\nremoved:   p_client_data\nremoved:   p_app_state\n\
                   verify:    data files left: 0\nresult:    WIPED - client data\nuploaded copy removed: /opt/munero/data/client.sqlite\n";
        assert_eq!(
            removed_on_host(out),
            ["removed: p_client_data", "removed: p_app_state", "result: WIPED - client data", "uploaded copy removed: /opt/munero/data/client.sqlite"]
        );
    }

    #[test]
    fn receipts_are_saved_private_and_listed_oldest_first() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let r = receipt();
        let (j1, t1) = save(tmp.path(), &r, "20261129T120000Z").unwrap();
        let mut w = r.clone();
        w.action = "wipe".into();
        let (j2, _) = save(tmp.path(), &w, "20261129T130000Z").unwrap();
        assert_eq!(std::fs::metadata(&t1).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(list(tmp.path(), "t1").unwrap(), [j1.clone(), j2]);
        assert_eq!(load(&j1).unwrap(), r);
        assert!(list(tmp.path(), "other").unwrap().is_empty());
    }
}
