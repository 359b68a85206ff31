//! What a trial costs: the hourly price (the provider's own list where it has an API for it, else
//! a dated table kept here) and the cost accrued since creation.

use munero_provider::{PriceQuote, ProviderKind};
use serde::Serialize;

/// The date the AWS table below was taken from the on-demand price list (Linux, us-east-1, USD).
/// Re-check it before quoting a client: AWS changes prices without notice.
pub const AWS_TABLE_DATE: &str = "2025-06-01";

/// (instance type, USD per hour) for the types offered for trials.
const AWS_ON_DEMAND: &[(&str, f64)] = &[
    ("t3.xlarge", 0.1664),
    ("t3.2xlarge", 0.3328),
    ("m6i.xlarge", 0.192),
    ("m6i.2xlarge", 0.384),
    ("c6i.2xlarge", 0.34),
    ("g4dn.xlarge", 0.526),
    ("g4dn.2xlarge", 0.752),
    ("g5.xlarge", 1.006),
    ("g5.2xlarge", 1.212),
];

/// The price from a table kept in the code, for kinds whose provider has no price API we use.
pub fn table_price(kind: ProviderKind, server_type: &str) -> Option<PriceQuote> {
    match kind {
        ProviderKind::Aws => AWS_ON_DEMAND.iter().find(|(t, _)| *t == server_type).map(|(t, h)| PriceQuote {
            currency: "USD".into(),
            hourly: *h,
            monthly_cap: None,
            parts: vec![format!("instance {t} (on-demand, Linux, us-east-1)")],
            source: format!("AWS on-demand price table dated {AWS_TABLE_DATE}"),
        }),
        _ => None,
    }
}

/// Hours a provider bills for `[from, to)`: every started hour.
pub fn billed_hours(from_unix: i64, to_unix: i64) -> i64 {
    let secs = (to_unix - from_unix).max(0);
    (secs + 3599) / 3600
}

/// A month of hourly billing, as providers with a monthly cap count it.
const HOURS_PER_MONTH: i64 = 730;

/// The cost of `hours` billed hours: hourly, but never more than the monthly cap per started
/// month of 730 hours.
pub fn amount(q: &PriceQuote, hours: i64) -> f64 {
    let Some(cap) = q.monthly_cap else { return q.hourly * hours as f64 };
    let full = hours / HOURS_PER_MONTH;
    let rest = hours % HOURS_PER_MONTH;
    full as f64 * cap.min(q.hourly * HOURS_PER_MONTH as f64) + (q.hourly * rest as f64).min(cap)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cost {
    pub currency: String,
    pub hourly: f64,
    pub monthly_cap: Option<f64>,
    pub hours: i64,
    pub amount: f64,
    pub includes: Vec<String>,
    pub source: String,
}

pub fn cost(q: &PriceQuote, from_unix: i64, to_unix: i64) -> Cost {
    let hours = billed_hours(from_unix, to_unix);
    Cost {
        currency: q.currency.clone(),
        hourly: q.hourly,
        monthly_cap: q.monthly_cap,
        hours,
        amount: round(amount(q, hours), 4),
        includes: q.parts.clone(),
        source: q.source.clone(),
    }
}

pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// `0.0451 EUR/h`
pub fn per_hour(c: &Cost) -> String {
    format!("{:.4} {}/h", c.hourly, c.currency)
}

/// `12.34 EUR`
pub fn money(x: f64, currency: &str) -> String {
    format!("{x:.2} {currency}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(hourly: f64, cap: Option<f64>) -> PriceQuote {
        PriceQuote { currency: "EUR".into(), hourly, monthly_cap: cap, parts: vec![], source: "t".into() }
    }

    #[test]
    fn every_started_hour_is_billed() {
        assert_eq!(billed_hours(0, 0), 0);
        assert_eq!(billed_hours(0, 1), 1);
        assert_eq!(billed_hours(0, 3600), 1);
        assert_eq!(billed_hours(0, 3601), 2);
        assert_eq!(billed_hours(100, 0), 0);
    }

    #[test]
    fn the_monthly_cap_bounds_each_month() {
        let q = quote(0.05, Some(30.0));
        assert_eq!(round(amount(&q, 10), 4), 0.5);
        assert_eq!(amount(&q, 700), 30.0);
        assert_eq!(round(amount(&q, 730 + 10), 4), 30.5);
        assert_eq!(round(amount(&quote(0.05, None), 1000), 4), 50.0);
    }

    #[test]
    fn aws_table_is_dated_and_used_only_for_aws() {
        let q = table_price(ProviderKind::Aws, "g5.xlarge").unwrap();
        assert_eq!((q.currency.as_str(), q.hourly), ("USD", 1.006));
        assert!(q.source.contains(AWS_TABLE_DATE), "{}", q.source);
        assert!(table_price(ProviderKind::Aws, "z9.mega").is_none());
        assert!(table_price(ProviderKind::Ssh, "g5.xlarge").is_none());
    }
}
