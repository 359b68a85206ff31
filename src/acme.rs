//! Why a certificate did not come, in the operator's words: read from Caddy's log lines (the
//! ACME problem types of RFC 8555 and the CA's own detail), each with what to do about it.

/// The most telling ACME failure in `log` (Caddy's output), explained; None when the log holds
/// no ACME error (the certificate may simply not be there yet).
pub fn explain(log: &str, name: &str, address: &str) -> Option<String> {
    // The newest error says the most: the CA's answer to the last attempt.
    let line = log.lines().rev().find(|l| l.contains("urn:ietf:params:acme:error:") || l.contains("acme: error"))?;
    let detail = detail_of(line);
    let problem = line
        .split("urn:ietf:params:acme:error:")
        .nth(1)
        .map(|r| r.chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>())
        .unwrap_or_default();
    let text = match problem.as_str() {
        "caa" => format!(
            "a CAA record on {name} (or a parent domain) forbids this CA from issuing for it: add `0 issue \"letsencrypt.org\"` \
             to the domain's CAA records, or remove the CAA record; then deploy again"
        ),
        "rateLimited" => {
            let retry = retry_after(&detail).map(|r| format!(" The CA says: retry after {r}.")).unwrap_or_default();
            format!(
                "the CA's rate limit for {name} is reached.{retry} Until then, rehearse with --acme-staging, or use another \
                 name (--domain auto gives each server its own)"
            )
        }
        "connection" | "incorrectResponse" if port80(&detail) => format!(
            "the CA could not reach {address} on port 80 to check the name (HTTP-01): open tcp/80 to the whole internet \
             in the server's firewall and on the host, then deploy again"
        ),
        "dns" => format!(
            "the CA could not resolve {name}: create an A record for {name} pointing at {address} (or use --domain auto), \
             wait for it to propagate, then deploy again"
        ),
        "unauthorized" | "connection" | "incorrectResponse" => format!(
            "the CA reached {name} but not this server: make {name} point at {address} (A record), keep port 80 open to \
             the internet, then deploy again"
        ),
        _ => "the CA refused the certificate".to_string(),
    };
    Some(if detail.is_empty() { text } else { format!("{text} (CA: {detail})") })
}

/// The human part after the problem type, as the CA wrote it.
fn detail_of(line: &str) -> String {
    let after = line.split("urn:ietf:params:acme:error:").nth(1).unwrap_or(line);
    let text = after.split_once(" - ").map_or(after, |(_, d)| d);
    text.split(['"', '\\']).next().unwrap_or("").trim().chars().take(300).collect()
}

fn port80(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("timeout during connect") || d.contains("connection refused") || d.contains(":80:") || d.contains("firewall")
}

fn retry_after(detail: &str) -> Option<String> {
    let rest = &detail[detail.find("retry after ")? + "retry after ".len()..];
    Some(match rest.find(" UTC") {
        Some(j) => rest[..j + 4].to_string(),
        None => rest.split([';', ',']).next().unwrap_or(rest).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "95-217-1-20.sslip.io";
    const ADDR: &str = "95.217.1.20";

    fn caddy(problem: &str, detail: &str) -> String {
        format!(
            "{{\"level\":\"info\",\"msg\":\"trying to solve challenge\"}}\n{{\"level\":\"error\",\"logger\":\"tls.obtain\",\
             \"msg\":\"could not get certificate from issuer\",\"identifier\":\"{NAME}\",\"error\":\"HTTP 403 \
             urn:ietf:params:acme:error:{problem} - {detail}\"}}\n"
        )
    }

    #[test]
    fn each_failure_a_ca_reports_says_what_to_do() {
        let e = explain(&caddy("caa", "CAA record for sslip.io prevents issuance"), NAME, ADDR).unwrap();
        assert!(e.contains("CAA record") && e.contains("letsencrypt.org"), "{e}");
        let e = explain(
            &caddy("rateLimited", "too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2026-12-01 10:15:00 UTC: see https://letsencrypt.org/docs/rate-limits/"),
            NAME,
            ADDR,
        )
        .unwrap();
        assert!(e.contains("retry after 2026-12-01 10:15:00 UTC") && e.contains("--acme-staging"), "{e}");
        let e = explain(&caddy("connection", "95.217.1.20: Fetching http://95-217-1-20.sslip.io/.well-known/acme-challenge/x: Timeout during connect (likely firewall problem)"), NAME, ADDR).unwrap();
        assert!(e.contains("port 80") && e.contains("tcp/80"), "{e}");
        let e = explain(&caddy("dns", "DNS problem: NXDOMAIN looking up A for trial.example.com"), "trial.example.com", ADDR).unwrap();
        assert!(e.contains("create an A record for trial.example.com pointing at 95.217.1.20"), "{e}");
        let e = explain(&caddy("unauthorized", "203.0.113.7: Invalid response from http://x/.well-known/acme-challenge/y: 404"), NAME, ADDR).unwrap();
        assert!(e.contains("but not this server"), "{e}");
    }

    #[test]
    fn a_log_without_an_acme_error_explains_nothing() {
        assert_eq!(explain("{\"msg\":\"certificate obtained successfully\"}\n", NAME, ADDR), None);
        assert_eq!(explain("", NAME, ADDR), None);
    }
}
