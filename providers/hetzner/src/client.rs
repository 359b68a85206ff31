//! The HTTP client: one place that owns authentication, rate-limit waiting and retries.
//!
//! - 429: wait until `RateLimit-Reset` (unix seconds), bounded by `max_rate_limit_wait`.
//! - 5xx (and 423 locked), connect errors and timeouts: bounded exponential backoff with jitter.
//! - Every loop has a maximum number of attempts; nothing retries forever.
//! - One logical request (all its attempts and backoff pauses) has a total deadline, so an API
//!   that never answers fails in about a minute, not after attempts x per-attempt timeout
//!   (6 x 60 s = 6 minutes before). Waits the API asked for with a 429 do not count against it:
//!   they are an answer, bounded on their own by `max_rate_limit_wait`.
//! - Requests that create something are sent with [`Retry::RateLimitOnly`]: a 5xx or timeout may
//!   have created the resource, so the caller looks it up by label before trying again.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use munero_provider::ProviderError;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::models::ErrorBody;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    pub max_rate_limit_wait: Duration,
    pub request_timeout: Duration,
    /// Total time for one logical request, rate-limit waits excepted.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(120),
            // Short enough that three attempts fit the deadline: one hung connection should
            // not use up the whole budget. Hetzner answers in well under a second normally.
            request_timeout: Duration::from_secs(20),
            deadline: Duration::from_secs(75),
        }
    }
}

impl RetryPolicy {
    /// Defaults, with `MUNERO_HTTP_BACKOFF_MS`, `MUNERO_HTTP_MAX_ATTEMPTS`,
    /// `MUNERO_HTTP_MAX_RATE_WAIT_S`, `MUNERO_HTTP_TIMEOUT_S` and `MUNERO_HTTP_DEADLINE_S`
    /// applied when set (tests make backoff fast with them).
    pub fn from_env() -> Self {
        let mut p = RetryPolicy::default();
        if let Some(ms) = env_u64("MUNERO_HTTP_BACKOFF_MS") {
            p.base = Duration::from_millis(ms);
            p.cap = p.cap.min(Duration::from_millis(ms.saturating_mul(64).max(1)));
        }
        if let Some(n) = env_u64("MUNERO_HTTP_MAX_ATTEMPTS") {
            p.max_attempts = (n as u32).clamp(1, 20);
        }
        if let Some(s) = env_u64("MUNERO_HTTP_MAX_RATE_WAIT_S") {
            p.max_rate_limit_wait = Duration::from_secs(s);
        }
        if let Some(s) = env_u64("MUNERO_HTTP_TIMEOUT_S") {
            p.request_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = env_u64("MUNERO_HTTP_DEADLINE_S") {
            p.deadline = Duration::from_secs(s.max(1));
        }
        p
    }

    /// Backoff before attempt `attempt + 1` (attempt counts from 1): base * 2^(attempt-1),
    /// capped, with jitter drawn from [half, full].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.saturating_sub(1).min(16)).unwrap_or(u32::MAX));
        let full = exp.min(self.cap);
        let half = full / 2;
        let jitter_ms = rand::thread_rng().gen_range(0..=(full - half).as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

pub(crate) fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// How a request may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// GET, DELETE and other idempotent calls: retry 429, 5xx and timeouts.
    Idempotent,
    /// Creating calls: retry only 429 (the API did not process the request).
    RateLimitOnly,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    pub policy: RetryPolicy,
    /// The Date header of the latest answer: the API's clock, for `doctor`'s skew check.
    last_date: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is never printed.
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

/// A failed attempt that may be retried after a wait.
enum Attempt {
    Done(Vec<u8>),
    /// `unanswered`: no HTTP answer came back (timeout, connection error), as opposed to an
    /// answer asking to come back later.
    Retry { wait: Duration, why: String, unanswered: bool, rate_limited: bool },
    Fail(ProviderError),
}

impl Client {
    pub fn new(base: &str, token: &str, policy: RetryPolicy) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("munero-infra/", env!("CARGO_PKG_VERSION")))
            .timeout(policy.request_timeout)
            .connect_timeout(policy.request_timeout.min(Duration::from_secs(15)))
            .build()
            .map_err(|e| ProviderError::Transport(e.to_string()))?;
        Ok(Client { http, base: base.trim_end_matches('/').to_string(), token: token.to_string(), policy, last_date: Default::default() })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, ProviderError> {
        let bytes = self.send(Method::GET, path, query, None, Retry::Idempotent).await?;
        decode(path, &bytes)
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value, retry: Retry) -> Result<T, ProviderError> {
        let bytes = self.send(Method::POST, path, &[], Some(body), retry).await?;
        decode(path, &bytes)
    }

    /// The Date header of the latest answer (an HTTP date), if any came with one.
    pub fn last_date(&self) -> Option<String> {
        self.last_date.lock().ok().and_then(|d| d.clone())
    }

    /// PUT (an update: idempotent, so retried like a GET).
    pub async fn put<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T, ProviderError> {
        let bytes = self.send(Method::PUT, path, &[], Some(body), Retry::Idempotent).await?;
        decode(path, &bytes)
    }

    /// DELETE; returns the body (possibly empty: 204).
    pub async fn delete(&self, path: &str) -> Result<Vec<u8>, ProviderError> {
        self.send(Method::DELETE, path, &[], None, Retry::Idempotent).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Vec<u8>, ProviderError> {
        let started = Instant::now();
        // Time the API itself asked us to wait (429): extends the deadline by as much.
        let mut rate_waited = Duration::ZERO;
        let mut last = String::new();
        let mut last_unanswered = false;
        let mut made = 0;
        let mut per_attempt = Duration::ZERO;
        for attempt in 1..=self.policy.max_attempts {
            let left = self.policy.deadline.saturating_sub(started.elapsed().saturating_sub(rate_waited));
            // A sliver of time left would only produce one more timeout.
            if attempt > 1 && left < Duration::from_millis(100) {
                break;
            }
            made = attempt;
            let limit = self.policy.request_timeout.min(left);
            per_attempt = per_attempt.max(limit);
            match self.attempt(&method, path, query, body, retry, attempt, limit).await {
                Attempt::Done(b) => return Ok(b),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { wait, why, unanswered, rate_limited } => {
                    last = why;
                    last_unanswered = unanswered;
                    if attempt == self.policy.max_attempts {
                        break;
                    }
                    let spent = started.elapsed().saturating_sub(rate_waited);
                    if !rate_limited && spent + wait >= self.policy.deadline {
                        break;
                    }
                    if rate_limited {
                        rate_waited += wait;
                    }
                    tracing::warn!(
                        "{method} {path}: {last}; retrying in {:.1}s (attempt {}/{})",
                        wait.as_secs_f64(),
                        attempt + 1,
                        self.policy.max_attempts
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let total = started.elapsed();
        if last_unanswered {
            return Err(ProviderError::Timeout(format!(
                "{method} {path}: no answer from the Hetzner API after {made} attempt{} of up to {} s each ({} s in all; \
                 last: {last}); MUNERO_HTTP_TIMEOUT_S and MUNERO_HTTP_DEADLINE_S tune the limits",
                if made == 1 { "" } else { "s" },
                per_attempt.as_secs_f64().round() as u64,
                total.as_secs_f64().round() as u64,
            )));
        }
        Err(ProviderError::RetriesExhausted { attempts: made, last: format!("{method} {path}: {last}") })
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        retry: Retry,
        attempt: u32,
        limit: Duration,
    ) -> Attempt {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method.clone(), &url).bearer_auth(&self.token).timeout(limit);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let transient = e.is_timeout() || e.is_connect() || e.is_request();
                if transient && retry == Retry::Idempotent {
                    return Attempt::Retry {
                        wait: self.policy.backoff(attempt),
                        why: munero_provider::error_chain(&e),
                        unanswered: true,
                        rate_limited: false,
                    };
                }
                if e.is_timeout() {
                    return Attempt::Fail(ProviderError::Timeout(format!("{method} {path}: {}", munero_provider::error_chain(&e))));
                }
                return Attempt::Fail(ProviderError::Transport(format!("{method} {path}: {}", munero_provider::error_chain(&e))));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        if let Some(d) = headers.get(reqwest::header::DATE).and_then(|d| d.to_str().ok()) {
            if let Ok(mut last) = self.last_date.lock() {
                *last = Some(d.to_string());
            }
        }
        let bytes = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                if retry == Retry::Idempotent {
                    return Attempt::Retry {
                        wait: self.policy.backoff(attempt),
                        why: munero_provider::error_chain(&e),
                        unanswered: true,
                        rate_limited: false,
                    };
                }
                return Attempt::Fail(ProviderError::Transport(format!("{method} {path}: {}", munero_provider::error_chain(&e))));
            }
        };
        if status.is_success() {
            return Attempt::Done(bytes);
        }
        let err: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
        let code = err.error.code.clone();
        let message = if err.error.message.is_empty() {
            String::from_utf8_lossy(&bytes).chars().take(300).collect()
        } else {
            err.error.message.clone()
        };
        // A contract checker in front of the API reports violations in this header: never retry.
        if let Some(v) = headers.get("sl-violations") {
            return Attempt::Fail(ProviderError::Api {
                status: status.as_u16(),
                code: "contract_violation".into(),
                message: format!("{message} | violations: {}", v.to_str().unwrap_or("?")),
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = rate_limit_wait(&headers, &self.policy).unwrap_or_else(|| self.policy.backoff(attempt));
            return Attempt::Retry { wait, why: "429 rate limited".into(), unanswered: false, rate_limited: true };
        }
        let transient = status.is_server_error() || status == StatusCode::LOCKED || code == "locked" || code == "timeout";
        if transient && (retry == Retry::Idempotent || status == StatusCode::SERVICE_UNAVAILABLE && code == "maintenance")
        {
            return Attempt::Retry {
                wait: self.policy.backoff(attempt),
                why: format!("{} {code}", status.as_u16()),
                unanswered: false,
                rate_limited: false,
            };
        }
        let what = format!("{method} {path}");
        Attempt::Fail(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProviderError::Unauthorized(format!("{what}: {message}")),
            StatusCode::NOT_FOUND => ProviderError::NotFound { kind: "resource".into(), id: path.to_string() },
            StatusCode::CONFLICT => ProviderError::Conflict(format!("{what}: {code}: {message}")),
            StatusCode::UNPROCESSABLE_ENTITY if code == "invalid_input" => {
                ProviderError::Invalid(format!("{what}: {message}"))
            }
            _ => ProviderError::Api { status: status.as_u16(), code, message: format!("{what}: {message}") },
        })
    }
}


/// Time to wait from the `RateLimit-Reset` header (unix seconds), bounded by the policy.
fn rate_limit_wait(headers: &reqwest::header::HeaderMap, policy: &RetryPolicy) -> Option<Duration> {
    let reset: u64 = headers.get("ratelimit-reset")?.to_str().ok()?.trim().parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let secs = (reset as f64 - now).max(0.0);
    // At least a short pause, so a reset already in the past does not turn into a hot loop.
    let wait = Duration::from_secs_f64(secs).max(Duration::from_millis(200));
    Some(wait.min(policy.max_rate_limit_wait))
}

fn decode<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, ProviderError> {
    let slice = if bytes.is_empty() { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(slice).map_err(|e| ProviderError::Other(format!("decoding the answer to {path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_half_to_full() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100), "{b1:?}");
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400), "{b3:?}");
            let b20 = p.backoff(20);
            assert!(b20 >= Duration::from_millis(500) && b20 <= Duration::from_millis(1000), "{b20:?}");
        }
    }

    #[test]
    fn rate_limit_wait_is_bounded_by_the_policy() {
        let p = RetryPolicy { max_rate_limit_wait: Duration::from_secs(5), ..RetryPolicy::default() };
        let mut h = reqwest::header::HeaderMap::new();
        let far = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
        h.insert("ratelimit-reset", far.to_string().parse().unwrap());
        assert_eq!(rate_limit_wait(&h, &p), Some(Duration::from_secs(5)));
        h.insert("ratelimit-reset", "1".parse().unwrap());
        assert_eq!(rate_limit_wait(&h, &p), Some(Duration::from_millis(200)));
        h.remove("ratelimit-reset");
        assert_eq!(rate_limit_wait(&h, &p), None);
    }

    #[tokio::test]
    async fn an_api_that_never_answers_fails_at_the_deadline_naming_timeout_and_attempts() {
        // Accepts connections and never answers.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let _hold = std::thread::spawn(move || {
            let conns: Vec<_> = l.incoming().take(20).collect();
            drop(conns);
        });
        let policy = RetryPolicy {
            max_attempts: 20,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(20),
            request_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(3),
            ..RetryPolicy::default()
        };
        let c = Client::new(&base, "t", policy).unwrap();
        let t0 = Instant::now();
        let e = c.get::<Value>("/servers", &[]).await.unwrap_err();
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(4500), "bounded by the deadline, took {took:?}");
        let m = e.to_string();
        assert!(matches!(e, ProviderError::Timeout(_)), "{m}");
        assert!(m.contains("no answer from the Hetzner API after 3 attempts of up to 1 s each"), "{m}");
    }

    #[test]
    fn the_default_deadline_bounds_the_default_attempts() {
        let p = RetryPolicy::default();
        assert!(p.deadline <= Duration::from_secs(90) && p.deadline >= Duration::from_secs(60));
        assert!(p.request_timeout * 3 <= p.deadline, "several attempts fit the deadline");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = Client::new("http://127.0.0.1:1", "sekrit-token-value", RetryPolicy::default()).unwrap();
        assert!(!format!("{c:?}").contains("sekrit"));
    }
}
