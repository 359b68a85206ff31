//! What `schedule install` puts in place, rendered without touching the machine: a systemd
//! service + timer (or a crontab line where systemd does not run) that runs the expiry warning and
//! `teardown --expired` with the credentials from an env file (0600) the unit names, never inline;
//! and the same job as a GitHub Actions schedule for operators who run jobs there.

use std::path::Path;

use anyhow::{bail, Result};

pub const UNIT: &str = "munero-teardown";
/// The teardown log (one JSON line per run) in the state dir, read by `schedule status`.
pub const TEARDOWN_LOG: &str = "teardown-log.jsonl";
/// Marks our crontab lines, so install replaces them and remove finds them.
pub const CRON_MARK: &str = "# munero-infra scheduled teardown";
/// Environment variables carried into the scheduled run when set at install time.
pub const CARRIED_ENV: &[&str] = &[
    "HCLOUD_TOKEN",
    "HCLOUD_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "MUNERO_AWS",
    "MUNERO_AWS_REGIONS",
    "MUNERO_WEBHOOK_URL",
];

/// How often, as systemd's OnCalendar and cron's five fields. Only periods that divide an
/// hour or a day evenly, from 5 minutes to a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Every {
    pub seconds: i64,
    pub on_calendar: String,
    pub cron: String,
}

pub fn every(seconds: i64) -> Result<Every> {
    let m = seconds / 60;
    if seconds % 60 != 0 || !(5..=1440).contains(&m) {
        bail!("--every must be between 5m and 1d in whole minutes, e.g. 30m, 1h or 6h");
    }
    let (on_calendar, cron) = if m < 60 && 60 % m == 0 {
        (format!("*-*-* *:00/{m}:00"), format!("*/{m} * * * *"))
    } else if m == 60 {
        ("hourly".to_string(), "0 * * * *".to_string())
    } else if m % 60 == 0 && 1440 % m == 0 && m < 1440 {
        let h = m / 60;
        (format!("*-*-* 00/{h}:00:00"), format!("0 */{h} * * *"))
    } else if m == 1440 {
        ("daily".to_string(), "0 0 * * *".to_string())
    } else {
        bail!("--every {m}m does not divide an hour or a day evenly: use e.g. 15m, 30m, 1h, 2h, 6h or 1d");
    };
    Ok(Every { seconds, on_calendar, cron })
}

/// The command the schedule runs: warn about what ends within a day, then tear down.
pub fn commands(bin: &Path, state_dir: &Path) -> [Vec<String>; 2] {
    let base = vec![bin.display().to_string(), "--state-dir".into(), state_dir.display().to_string(), "--output".into(), "json".into()];
    let with = |rest: &[&str]| base.iter().cloned().chain(rest.iter().map(|s| s.to_string())).collect::<Vec<_>>();
    [with(&["teardown", "--expired", "--warn-before", "24h"]), with(&["teardown", "--expired"])]
}

fn systemd_quote(argv: &[String]) -> String {
    argv.iter()
        .map(|a| if a.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') { format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\"")) } else { a.clone() })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn service_unit(bin: &Path, state_dir: &Path, env_file: &Path) -> String {
    let [warn, teardown] = commands(bin, state_dir);
    format!(
        "[Unit]\nDescription=munero-infra: warn about trials ending soon, tear down expired ones\n\
         Wants=network-online.target\nAfter=network-online.target\n\n\
         [Service]\nType=oneshot\n\
         # Provider credentials and the webhook, 0600; never written into this file.\n\
         EnvironmentFile={}\nExecStart={}\nExecStart={}\n",
        env_file.display(),
        systemd_quote(&warn),
        systemd_quote(&teardown)
    )
}

pub fn timer_unit(e: &Every) -> String {
    format!(
        "[Unit]\nDescription=munero-infra: scheduled teardown ({})\n\n\
         [Timer]\nOnCalendar={}\n# A run missed while the machine was off happens at the next boot.\nPersistent=true\n\
         RandomizedDelaySec=60\n\n[Install]\nWantedBy=timers.target\n",
        e.on_calendar, e.on_calendar
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `KEY='value'` lines, read by systemd's EnvironmentFile and by `. file` in a shell alike.
pub fn env_file(vars: &[(String, String)]) -> String {
    let mut out = String::from("# munero-infra scheduled teardown: credentials (keep 0600)\n");
    for (k, v) in vars {
        out.push_str(&format!("{k}={}\n", shell_quote(v)));
    }
    out
}

pub fn cron_line(e: &Every, bin: &Path, state_dir: &Path, env_file: &Path, log: &Path) -> String {
    let [warn, teardown] = commands(bin, state_dir);
    let q = |v: &[String]| v.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
    format!(
        "{} set -a; . {}; set +a; {} >>{} 2>&1; {} >>{} 2>&1 {CRON_MARK}",
        e.cron,
        shell_quote(&env_file.display().to_string()),
        q(&warn),
        shell_quote(&log.display().to_string()),
        q(&teardown),
        shell_quote(&log.display().to_string())
    )
}

/// The same job on GitHub Actions (secrets in the repository's settings, the state dir kept
/// as an artifact is not needed: teardown finds cloud trials by their labels).
pub fn github_actions(e: &Every) -> String {
    format!(
        "# .github/workflows/munero-teardown.yml\nname: munero teardown\non:\n  schedule:\n    - cron: \"{}\"\n  workflow_dispatch: {{}}\n\
         jobs:\n  teardown:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n          munero-infra teardown --expired --warn-before 24h\n          munero-infra teardown --expired\n\
         \x20       env:\n          HCLOUD_TOKEN: ${{{{ secrets.HCLOUD_TOKEN }}}}\n          MUNERO_WEBHOOK_URL: ${{{{ secrets.MUNERO_WEBHOOK_URL }}}}\n",
        e.cron
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_become_calendar_and_cron_forms_and_odd_ones_are_refused() {
        assert_eq!(every(3600).unwrap().on_calendar, "hourly");
        assert_eq!(every(3600).unwrap().cron, "0 * * * *");
        assert_eq!(every(900).unwrap().cron, "*/15 * * * *");
        assert_eq!(every(6 * 3600).unwrap().on_calendar, "*-*-* 00/6:00:00");
        assert_eq!(every(86_400).unwrap().cron, "0 0 * * *");
        for bad in [60, 7 * 60, 5 * 3600, 2 * 86_400, 90] {
            assert!(every(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_name_the_env_file_and_never_hold_a_value() {
        let s = service_unit(Path::new("/usr/local/bin/munero-infra"), Path::new("/var/lib/munero state"), Path::new("/etc/munero-infra/schedule.env"));
        assert!(s.contains("EnvironmentFile=/etc/munero-infra/schedule.env"));
        assert!(s.contains("ExecStart=/usr/local/bin/munero-infra --state-dir \"/var/lib/munero state\" --output json teardown --expired\n"));
        assert!(s.contains("--warn-before 24h"));
        let env = env_file(&[("HCLOUD_TOKEN".into(), "ab'c".into())]);
        assert!(env.contains("HCLOUD_TOKEN='ab'\\''c'"));
        let line = cron_line(&every(3600).unwrap(), Path::new("/b"), Path::new("/s"), Path::new("/e"), Path::new("/l"));
        assert!(line.starts_with("0 * * * * set -a; . '/e'; set +a; '/b' '--state-dir' '/s'") && line.ends_with(CRON_MARK), "{line}");
        assert!(github_actions(&every(3600).unwrap()).contains("- cron: \"0 * * * *\""));
    }
}
