//! Instants for people.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Unix seconds in the form systemd's OnCalendar takes ("2027-01-16 08:00:00 UTC").
pub fn systemd_calendar(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_else(|| unix.to_string())
}
