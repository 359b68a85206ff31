//! `history <TRIAL>`: the trial's audit log as kept here (it outlives destroy).

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::HistoryArgs;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::output::{table, Report};
use crate::{audit, validate};

pub fn run(ctx: &Ctx, args: &HistoryArgs) -> Result<Report> {
    validate::trial_name(&args.trial)?;
    let path = audit::local_path(ctx, &args.trial);
    let lines = audit::read_local(&path)?;
    if lines.is_empty() && !ctx.store.exists(&args.trial) {
        return Err(usage(format!("no history and no record of a trial named {}; run `munero-infra status` to list them", args.trial)));
    }
    let entries: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|_| json!({"unreadable": l}))).collect();
    let fixed = ["time", "operator", "trial", "action", "result"];
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
            let rest: Vec<String> = e
                .as_object()
                .map(|o| o.iter().filter(|(k, _)| !fixed.contains(&k.as_str())).map(|(k, v)| format!("{k}={}", flat(v))).collect())
                .unwrap_or_default();
            vec![s("time"), s("operator"), s("action"), s("result"), rest.join(" ")]
        })
        .collect();
    let human = if rows.is_empty() {
        format!("No history for trial {} yet.", args.trial)
    } else {
        table(&["TIME", "OPERATOR", "ACTION", "RESULT", "DETAILS"], &rows)
    };
    Ok(Report::new(json!({"ok": true, "command": "history", "trial": args.trial, "file": path, "entries": entries}), human))
}

fn flat(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(flat).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
