//! From the operator's side: HTTPS checks over the public URL with Basic Auth, and the exposure
//! probe (which TCP ports answer).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

/// Where and how to reach the site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Name in the URL (domain or address).
    pub name: String,
    /// Address to connect to (lets a test or a not-yet-propagated DNS name be reached).
    pub connect: Option<IpAddr>,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Extra root certificate (PEM) to trust, e.g. Caddy's internal CA when MUNERO_TLS=internal.
    pub extra_root_pem: Option<Vec<u8>>,
    /// A staging CA's chain, which no root store holds: checked for name and expiry only.
    pub accept_untrusted: bool,
}

impl Site {
    pub fn base_url(&self) -> String {
        let host = if self.name.contains(':') { format!("[{}]", self.name) } else { self.name.clone() };
        if self.port == 443 {
            format!("https://{host}/")
        } else {
            format!("https://{host}:{}/", self.port)
        }
    }

    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client> {
        self.builder(timeout)?.build().context("building the HTTPS client")
    }

    fn builder(&self, timeout: Duration) -> Result<reqwest::ClientBuilder> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if self.accept_untrusted {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &self.extra_root_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).context("parsing the site's CA certificate")?);
        }
        if let (Some(ip), false) = (self.connect, self.name.parse::<IpAddr>().is_ok()) {
            b = b.resolve(&self.name, SocketAddr::new(ip, self.port));
        }
        Ok(b)
    }
}

/// The certificate the site presented, as verified.
#[derive(Debug, Clone, Serialize)]
pub struct CertReport {
    pub issuer: String,
    /// RFC 3339.
    pub not_after: String,
    pub days_left: i64,
}

/// Why no certificate was accepted; `settled` when waiting will not change it (a certificate is
/// there but not trusted, not for the name, or expired), as opposed to none being served yet.
#[derive(Debug, Clone)]
pub struct CertError {
    pub reason: String,
    pub settled: bool,
}

impl std::fmt::Display for CertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// One HTTPS request to the site (any status will do): the leaf certificate it presented, once
/// the chain and the name check out against the site's roots. The error says why not.
pub async fn certificate(site: &Site) -> std::result::Result<CertReport, CertError> {
    let pending = |reason: String| CertError { reason, settled: false };
    let client = site
        .builder(Duration::from_secs(15))
        .and_then(|b| b.tls_info(true).build().context("building the HTTPS client"))
        .map_err(|e| pending(format!("{e:#}")))?;
    let resp = client.get(format!("{}health", site.base_url())).send().await.map_err(|e| {
        let chain = munero_provider::error_chain(&e);
        let settled = |reason: String| CertError { reason, settled: true };
        if chain.contains("UnknownIssuer") {
            settled(format!("the certificate is not signed by a root this machine trusts ({chain})"))
        } else if chain.contains("NotValidForName") {
            settled(format!("the certificate is not for {} ({chain})", site.name))
        } else if chain.contains("Expired") {
            settled(format!("the certificate has expired ({chain})"))
        } else {
            pending(chain)
        }
    })?;
    let der = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .ok_or_else(|| pending("the connection carried no certificate".to_string()))?;
    let info = crate::cert::leaf_info(der).map_err(|e| pending(format!("reading the certificate: {e:#}")))?;
    let days_left = (info.not_after - time::OffsetDateTime::now_utc()).whole_days();
    Ok(CertReport {
        issuer: info.issuer,
        not_after: info.not_after.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        days_left,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub detail: String,
    /// Passed, with something the operator should hear (no model: the assistant says so).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
}

/// Polls `/health` (no credentials) until it answers 200, then the dashboard page (with
/// credentials) until the frontend serves it: the backend can be healthy while the frontend is
/// still starting, and the client sees the page, not the API.
/// Without `require_model`, a 503 from /health counts when the dashboard's API answers (the
/// model is what is missing). Returns false in that case, true when /health said 200.
pub async fn wait_healthy(site: &Site, timeout: Duration, require_model: bool) -> Result<bool> {
    let client = site.client(Duration::from_secs(10))?;
    let base = site.base_url();
    let start = Instant::now();
    let mut full = true;
    for (what, url, auth) in [("/health", format!("{base}health"), false), ("the dashboard page", base.clone(), true)] {
        let mut last: String;
        loop {
            let mut rb = client.get(&url);
            if auth {
                rb = rb.basic_auth(&site.user, Some(&site.password));
            }
            match rb.send().await {
                Ok(r) if r.status().as_u16() == 200 => break,
                Ok(r) if r.status().as_u16() == 503 && !auth && !require_model && dashboard_answers(site, &client).await => {
                    full = false;
                    break;
                }
                Ok(r) => last = format!("HTTP {}", r.status().as_u16()),
                Err(e) => last = format!("{e:#}"),
            }
            if start.elapsed() >= timeout {
                bail!("{what} ({url}) did not become healthy within {}s (last: {last})", timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    Ok(full)
}

/// The dashboard's API answers with the client's data (what a missing model leaves working).
async fn dashboard_answers(site: &Site, client: &reqwest::Client) -> bool {
    let r = client
        .get(format!("{}api/dashboard/test", site.base_url()))
        .basic_auth(&site.user, Some(&site.password))
        .send()
        .await;
    match r {
        Ok(r) if r.status().as_u16() == 200 => {
            r.json::<Value>().await.is_ok_and(|j| j.get("ok") == Some(&Value::Bool(true)))
        }
        _ => false,
    }
}

/// The four checks of the runbook, plus that the site refuses requests without credentials.
/// Without `require_model`, a model the backend reports missing is a warning, not a failure:
/// the dashboard is the trial's first half and still works.
pub async fn smoke(site: &Site, require_model: bool) -> Result<Vec<Check>> {
    let client = site.client(Duration::from_secs(300))?;
    let base = site.base_url();
    let mut checks = Vec::new();

    let r = client.get(format!("{base}health")).send().await;
    checks.push(judge("GET /health (no credentials)", r, |s, _| s == 200).await);

    let r = client.get(format!("{base}api/dashboard/test")).send().await;
    checks.push(judge("GET /api/dashboard/test without credentials is refused", r, |s, _| s == 401).await);

    let auth = |rb: reqwest::RequestBuilder| rb.basic_auth(&site.user, Some(&site.password));
    let r = client.get(base.clone()).send().await;
    checks.push(judge("GET / without credentials is refused", r, |s, _| s == 401).await);
    let r = auth(client.get(base.clone())).send().await;
    checks.push(page_check("GET / (the dashboard page)", r).await);
    let r = auth(client.get(format!("{base}api/dashboard/test"))).send().await;
    checks.push(
        judge("GET /api/dashboard/test", r, |s, j| s == 200 && j.get("ok") == Some(&Value::Bool(true))).await,
    );
    let r = auth(client.get(format!("{base}api/chat/test"))).send().await;
    let model_missing = std::cell::Cell::new(false);
    let mut chat = judge("GET /api/chat/test", r, |s, j| {
        model_missing.set(s == 200 && j.get("model_present") == Some(&Value::Bool(false)));
        s == 200 && j.get("ok") == Some(&Value::Bool(true))
    })
    .await;
    let model_missing = model_missing.get();
    if model_missing && !require_model {
        chat.ok = true;
        chat.warning = true;
        chat.detail = format!("{}: the model is not available; the assistant tells the client so", chat.detail);
        checks.push(chat);
        // /health reports the stack degraded for the same reason: expected, said, not a failure.
        if let Some(h) = checks.iter_mut().find(|c| c.name.starts_with("GET /health") && c.status == Some(503)) {
            h.ok = true;
            h.warning = true;
            h.detail = format!("{}: degraded because the model is missing", h.detail);
        }
        return Ok(checks);
    }
    checks.push(chat);
    let r = auth(client.post(format!("{base}api/chat/")))
        .json(&serde_json::json!({"question": "How many rows does the main table have?"}))
        .send()
        .await;
    checks.push(
        judge("POST /api/chat/", r, |s, j| {
            s == 200
                && j.get("error").map_or(true, Value::is_null)
                && j.get("sql").and_then(Value::as_str).is_some_and(|q| !q.is_empty())
        })
        .await,
    );
    Ok(checks)
}

/// The frontend's page: 200 and HTML (a JSON error or Caddy's plain-text 502 is not the page).
async fn page_check(name: &str, r: reqwest::Result<reqwest::Response>) -> Check {
    match r {
        Err(e) => Check { name: name.into(), ok: false, status: None, detail: format!("{e:#}"), warning: false },
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            let html = body.get(..body.len().min(512)).unwrap_or("").to_ascii_lowercase().contains("<html");
            let detail = if html { "html".to_string() } else { "not an HTML page".to_string() };
            Check { name: name.into(), ok: status == 200 && html, status: Some(status), detail, warning: false }
        }
    }
}

async fn judge(
    name: &str,
    r: reqwest::Result<reqwest::Response>,
    ok: impl Fn(u16, &Value) -> bool,
) -> Check {
    match r {
        Err(e) => Check { name: name.into(), ok: false, status: None, detail: format!("{e:#}"), warning: false },
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let good = ok(status, &json);
            // Only the API's status fields are shown, never data rows.
            let detail = match &json {
                Value::Object(m) => ["ok", "status", "error", "detail", "model", "model_present", "tables", "row_count"]
                    .iter()
                    .filter_map(|k| m.get(*k).map(|v| format!("{k}={v}")))
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            };
            Check { name: name.into(), ok: good, status: Some(status), detail, warning: false }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PortResult {
    pub port: u16,
    pub answered: bool,
    pub expected_open: bool,
}

/// TCP connect to each port; `open` must answer, `closed` must not.
pub async fn exposure_probe(host: &str, open: &[u16], closed: &[u16]) -> Result<Vec<PortResult>> {
    let addr: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => (host, 0)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .ok_or_else(|| anyhow!("{host} has no address"))?
            .ip(),
    };
    let probes = open.iter().map(|p| (*p, true)).chain(closed.iter().map(|p| (*p, false)));
    let futs = probes.map(|(port, expected_open)| async move {
        let answered = match tokio::time::timeout(Duration::from_secs(4), tokio::net::TcpStream::connect(SocketAddr::new(addr, port))).await {
            Ok(Ok(conn)) => stays_open(conn, expected_open).await,
            _ => false,
        };
        PortResult { port, answered, expected_open }
    });
    Ok(futures::future::join_all(futs).await)
}

/// A connection that is closed at once without a byte is no service: a port forward (QEMU's
/// user-mode network, a proxy) accepts on behalf of a port that refuses behind it. A service
/// either greets (SSH) or waits for the client (HTTP). A port that must answer is asked, when it
/// does not greet within a moment, for an HTTP `HEAD`: a web server answers at once (over TLS with
/// a 400), where waiting for its silence took the whole timeout. A port that must not answer is
/// never written to: whatever accepted there is judged by its silence alone.
async fn stays_open(mut conn: tokio::net::TcpStream, ask: bool) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut b = [0u8; 1];
    let mut wait = Duration::from_millis(1500);
    if ask {
        match tokio::time::timeout(Duration::from_millis(200), conn.read(&mut b)).await {
            Err(_) => {}
            Ok(Ok(n)) => return n > 0,
            Ok(Err(_)) => return false,
        }
        if conn.write_all(b"HEAD / HTTP/1.0\r\n\r\n").await.is_err() {
            return false;
        }
        wait -= Duration::from_millis(200);
    }
    match tokio::time::timeout(wait, conn.read(&mut b)).await {
        Err(_) => true,
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
    }
}

/// From `docker ps` lines `service\tname\tports`: containers other than caddy that publish ports.
pub fn non_caddy_published(docker_ps: &str) -> Vec<String> {
    docker_ps
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (service, name, ports) = (f.first()?, f.get(1)?, f.get(2).copied().unwrap_or(""));
            (ports.contains("->") && *service != "caddy").then(|| format!("{name} ({service}): {ports}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_caddy_may_publish() {
        let ps = "caddy\tmunero-caddy-1\t0.0.0.0:80->80/tcp, 0.0.0.0:443->443/tcp\n\
                  backend\tmunero-backend-1\t8000/tcp\n\
                  ollama\tmunero-ollama-1\t0.0.0.0:11434->11434/tcp\n";
        assert_eq!(non_caddy_published(ps), vec!["munero-ollama-1 (ollama): 0.0.0.0:11434->11434/tcp"]);
        assert!(non_caddy_published("caddy\tc\t0.0.0.0:443->443/tcp\nfrontend\tf\t3000/tcp\n").is_empty());
    }

    #[tokio::test]
    async fn probe_tells_listening_from_closed_ports() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap().port();
        let closed = {
            let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            t.local_addr().unwrap().port()
        };
        let r = exposure_probe("127.0.0.1", &[open], &[closed]).await.unwrap();
        assert!(r[0].answered && r[0].expected_open);
        assert!(!r[1].answered && !r[1].expected_open);
    }

    #[tokio::test]
    async fn a_port_that_must_answer_is_asked_and_a_forward_that_drops_it_is_not_a_service() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A web server: silent until it has a request, then answers it.
        let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web_port = web.local_addr().unwrap().port();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = asked.clone();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = web.accept().await {
                let mut req = vec![0u8; 64];
                let n = c.read(&mut req).await.unwrap_or(0);
                seen.lock().unwrap().extend_from_slice(&req[..n]);
                let _ = c.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
            }
        });
        // A forward with nothing behind it.
        let fwd = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fwd_port = fwd.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((c, _)) = fwd.accept().await {
                drop(c);
            }
        });
        let r = exposure_probe("127.0.0.1", &[web_port, fwd_port], &[]).await.unwrap();
        assert!(r[0].answered, "{r:?}");
        assert!(asked.lock().unwrap().starts_with(b"HEAD / HTTP/1.0"), "the web port was asked for a page");
        assert!(!r[1].answered, "{r:?}");
    }

    #[tokio::test]
    async fn a_port_that_must_not_answer_is_never_written_to() {
        use tokio::io::AsyncReadExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let got = tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut all = Vec::new();
            c.read_to_end(&mut all).await.unwrap();
            all
        });
        let r = exposure_probe("127.0.0.1", &[], &[port]).await.unwrap();
        assert!(r[0].answered, "a silent service that keeps the connection open is exposed: {r:?}");
        assert_eq!(got.await.unwrap(), b"", "nothing was sent to it");
    }

    #[tokio::test]
    async fn a_forward_that_accepts_and_drops_at_once_is_not_a_service() {
        // What QEMU's user-mode forward does for a port nothing listens on inside the VM.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                drop(c);
            }
        });
        let r = exposure_probe("127.0.0.1", &[], &[port]).await.unwrap();
        assert!(!r[0].answered, "{r:?}");
    }

    #[test]
    fn base_url_brackets_ipv6_and_keeps_non_default_ports() {
        let s = Site { name: "2001:db8::1".into(), connect: None, port: 8443, user: "u".into(), password: "p".into(), extra_root_pem: None, accept_untrusted: false };
        assert_eq!(s.base_url(), "https://[2001:db8::1]:8443/");
    }
}
