//! Notifications to a webhook (`webhook_url` in munero.toml, or `MUNERO_WEBHOOK_URL`) in the
//! form Slack's incoming webhooks take (`{"text": ...}`; other chat tools read the same), with
//! the event's fields beside it for machines. A notification that fails is reported and never
//! stops the command; the URL is a secret (it carries the hook's token) and is never printed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::Config;
use crate::output::Out;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ExpiresSoon { trial: String, expires: String, hours_left: i64 },
    Wiped { trial: String },
    TornDown { trial: String },
    TeardownFailed { trial: String, error: String },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::ExpiresSoon { .. } => "expires_soon",
            Event::Wiped { .. } => "wiped",
            Event::TornDown { .. } => "torn_down",
            Event::TeardownFailed { .. } => "teardown_failed",
        }
    }

    pub fn trial(&self) -> &str {
        match self {
            Event::ExpiresSoon { trial, .. } | Event::Wiped { trial } | Event::TornDown { trial } | Event::TeardownFailed { trial, .. } => trial,
        }
    }

    /// The JSON body sent.
    pub fn payload(&self) -> Value {
        let text = match self {
            Event::ExpiresSoon { trial, expires, hours_left } => {
                format!(":hourglass: Trial *{trial}* expires in {hours_left} h ({expires}): extend it (`munero-infra extend {trial} --days N`) or let teardown end it.")
            }
            Event::Wiped { trial } => format!(":broom: Trial *{trial}*: the client's data was wiped from its server."),
            Event::TornDown { trial } => format!(":white_check_mark: Trial *{trial}* was torn down: its server and resources are deleted."),
            Event::TeardownFailed { trial, error } => {
                format!(":warning: Teardown of trial *{trial}* FAILED: {error}. The scheduled run tries again; check with `munero-infra status`.")
            }
        };
        let mut v = json!({"text": text, "event": self.name(), "trial": self.trial()});
        if let Event::ExpiresSoon { expires, hours_left, .. } = self {
            v["expires"] = json!(expires);
            v["hours_left"] = json!(hours_left);
        }
        if let Event::TeardownFailed { error, .. } = self {
            v["error"] = json!(error);
        }
        v
    }
}

/// The webhook to use: the environment over the config; None when neither names one.
pub fn url(cfg: &Config) -> Option<String> {
    std::env::var("MUNERO_WEBHOOK_URL").ok().filter(|u| !u.trim().is_empty()).or_else(|| cfg.webhook_url.clone())
}

/// Send each event; failures become warnings (without the URL). Returns how many arrived.
pub async fn send(out: &Out, cfg: &Config, events: &[Event]) -> usize {
    let Some(url) = url(cfg) else { return 0 };
    if events.is_empty() {
        return 0;
    }
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(c) => c,
        Err(e) => {
            out.progress(format!("warning: notifications not sent: {e}"));
            return 0;
        }
    };
    let mut sent = 0;
    for e in events {
        match client.post(&url).json(&e.payload()).send().await {
            Ok(r) if r.status().is_success() => sent += 1,
            Ok(r) => out.progress(format!("warning: the webhook refused the {} notice of {}: HTTP {}", e.name(), e.trial(), r.status().as_u16())),
            Err(err) => out.progress(format!("warning: the {} notice of {} was not delivered: {}", e.name(), e.trial(), err.without_url())),
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_reads_as_a_chat_message_and_carries_its_fields() {
        let e = Event::ExpiresSoon { trial: "acme".into(), expires: "2026-12-01T10:00:00Z".into(), hours_left: 20 };
        let p = e.payload();
        assert!(p["text"].as_str().unwrap().contains("expires in 20 h"));
        assert_eq!((p["event"].as_str(), p["trial"].as_str(), p["hours_left"].as_i64()), (Some("expires_soon"), Some("acme"), Some(20)));
        let p = Event::TeardownFailed { trial: "acme".into(), error: "server 7: timed out".into() }.payload();
        assert!(p["text"].as_str().unwrap().contains("FAILED: server 7: timed out"));
        assert_eq!(Event::Wiped { trial: "a".into() }.payload()["event"], "wiped");
        assert_eq!(Event::TornDown { trial: "a".into() }.payload()["event"], "torn_down");
    }
}
