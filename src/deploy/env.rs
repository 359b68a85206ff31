//! The stack's `.env`: parsed, merged with the generated values (domain, TLS mode, Basic Auth
//! hash), checked for the required keys. Values are never printed: errors and plans name keys only.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Keys the stack cannot start without (docker-compose.yml uses `${...:?}` for some of them).
pub const REQUIRED_KEYS: &[&str] = &[
    "MUNERO_DOMAIN",
    "MUNERO_TLS",
    "BASIC_AUTH_USER",
    "BASIC_AUTH_HASH",
    "OLLAMA_MODEL",
];

pub const DEFAULT_MODEL: &str = "qwen2.5-coder:3b";

/// An env file as ordered lines, so comments and layout survive the merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Other(String),
    Pair { key: String, value: String },
}

impl EnvFile {
    pub fn parse(text: &str) -> Result<EnvFile> {
        let mut lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let t = t.strip_prefix("export ").unwrap_or(t);
            let Some((k, v)) = t.split_once('=') else {
                bail!("line {}: expected KEY=VALUE (the value is not shown)", i + 1);
            };
            let key = k.trim().to_string();
            if key.is_empty()
                || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                || key.as_bytes()[0].is_ascii_digit()
            {
                bail!("line {}: {key:?} is not a valid variable name", i + 1);
            }
            lines.push(Line::Pair { key, value: unquote(v.trim()) });
        }
        Ok(EnvFile { lines })
    }

    pub fn load(path: &Path) -> Result<EnvFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the env file {}", path.display()))?;
        EnvFile::parse(&text).with_context(|| format!("parsing the env file {}", path.display()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Pair { key: k, value } if k == key => Some(value.as_str()),
            _ => None,
        })
    }

    /// Set (replacing every earlier assignment in place) or append.
    pub fn set(&mut self, key: &str, value: &str) {
        let mut found = false;
        self.lines.retain_mut(|l| match l {
            Line::Pair { key: k, value: v } if k == key => {
                if found {
                    return false;
                }
                found = true;
                *v = value.to_string();
                true
            }
            _ => true,
        });
        if !found {
            self.lines.push(Line::Pair { key: key.to_string(), value: value.to_string() });
        }
    }

    pub fn keys(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in &self.lines {
            if let Line::Pair { key, .. } = l {
                if !out.contains(key) {
                    out.push(key.clone());
                }
            }
        }
        out
    }

    pub fn values(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Pair { value, .. } => Some(value.clone()),
                _ => None,
            })
            .collect()
    }

    /// Keys of REQUIRED_KEYS that are missing or empty (plus ACME_EMAIL in acme mode).
    pub fn missing_required(&self) -> Vec<String> {
        let mut miss: Vec<String> = REQUIRED_KEYS
            .iter()
            .filter(|k| self.get(k).map_or(true, |v| v.trim().is_empty()))
            .map(|k| k.to_string())
            .collect();
        if self.get("MUNERO_TLS").unwrap_or("acme") == "acme"
            && self.get("ACME_EMAIL").map_or(true, |v| v.trim().is_empty() || is_placeholder(v))
        {
            miss.push("ACME_EMAIL".into());
        }
        miss
    }

    /// Render for Docker Compose: values with shell-special characters single-quoted (a bcrypt
    /// hash has `$`, which compose would otherwise interpolate).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            match l {
                Line::Other(t) => s.push_str(t),
                Line::Pair { key, value } => {
                    s.push_str(key);
                    s.push('=');
                    s.push_str(&quote_value(value));
                }
            }
            s.push('\n');
        }
        s
    }
}

fn unquote(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && ((b[0] == b'\'' && b[b.len() - 1] == b'\'') || (b[0] == b'"' && b[b.len() - 1] == b'"')) {
        v[1..v.len() - 1].to_string()
    } else {
        // An unquoted value ends at an inline comment.
        match v.find(" #") {
            Some(i) => v[..i].trim_end().to_string(),
            None => v.to_string(),
        }
    }
}

fn quote_value(v: &str) -> String {
    let plain = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:,+@%=".contains(&b));
    if plain {
        v.to_string()
    } else {
        // Compose: single-quoted values are taken literally (no interpolation).
        format!("'{}'", v.replace('\'', ""))
    }
}

/// Values of .env.example that only show the shape and must not reach a real host.
pub fn is_placeholder(v: &str) -> bool {
    v.contains("example.com") || v.contains("REPLACE") || v.contains("example.org")
}

/// The generated values a deploy writes into `.env`.
#[derive(Debug, Clone)]
pub struct Generated {
    pub domain: String,
    pub tls: String,
    pub basic_auth_user: String,
    pub basic_auth_hash: String,
    pub model: Option<String>,
    /// GPU trial: every compose command (also restarts and the wipe script) must include the
    /// NVIDIA override, which COMPOSE_FILE in .env does.
    pub gpu: bool,
}

/// Base file (the operator's `--env`, else the bundle's `.env.example`) + generated values.
/// The operator's own non-placeholder values for domain, TLS mode, ACME e-mail, user and model
/// win; the Basic Auth hash is always the generated one (its password is what `smoke` uses).
/// Without an operator file (`from_operator` false) the generated values are used throughout.
pub fn merge(base: &EnvFile, gen: &Generated, from_operator: bool) -> EnvFile {
    let mut env = base.clone();
    let keep = |k: &str| {
        base.get(k)
            .filter(|v| from_operator && !v.trim().is_empty() && !is_placeholder(v))
            .map(str::to_string)
    };
    let domain = keep("MUNERO_DOMAIN").unwrap_or_else(|| gen.domain.clone());
    env.set("MUNERO_DOMAIN", &domain);
    let tls = keep("MUNERO_TLS").unwrap_or_else(|| gen.tls.clone());
    env.set("MUNERO_TLS", &tls);
    if base.get("ACME_EMAIL").is_some_and(is_placeholder) {
        env.set("ACME_EMAIL", "");
    }
    let user = keep("BASIC_AUTH_USER").unwrap_or_else(|| gen.basic_auth_user.clone());
    env.set("BASIC_AUTH_USER", &user);
    env.set("BASIC_AUTH_HASH", &gen.basic_auth_hash);
    let model = gen
        .model
        .clone()
        .or_else(|| keep("OLLAMA_MODEL"))
        .unwrap_or_else(|| DEFAULT_MODEL.to_string());
    env.set("OLLAMA_MODEL", &model);
    if gen.gpu {
        env.set("COMPOSE_FILE", "docker-compose.yml:docker-compose.gpu.yml");
    }
    if env.get("COMPOSE_PROJECT_NAME").map_or(true, |v| v.trim().is_empty()) {
        env.set("COMPOSE_PROJECT_NAME", "munero");
    }
    env
}

/// Basic Auth credentials kept 0600 in the trial's directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    pub bcrypt_hash: String,
}

impl Credentials {
    pub fn generate(user: &str) -> Result<Credentials> {
        use rand::Rng;
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut rng = rand::rngs::OsRng;
        let password: String = (0..24)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        let bcrypt_hash = bcrypt::hash(&password, 12).context("hashing the Basic Auth password")?;
        Ok(Credentials { user: user.to_string(), password, bcrypt_hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen() -> Generated {
        Generated {
            domain: "203.0.113.9".into(),
            tls: "internal".into(),
            basic_auth_user: "acme".into(),
            basic_auth_hash: "$2b$12$abcdefghijklmnopqrstuv".into(),
            model: None,
            gpu: false,
        }
    }

    #[test]
    fn example_placeholders_are_replaced_and_hash_is_single_quoted() {
        let base = EnvFile::parse(
            "# c\nMUNERO_DOMAIN=trial-acme.example.com\nMUNERO_TLS=acme\nACME_EMAIL=ops@example.com\n\
             BASIC_AUTH_USER=acme\nBASIC_AUTH_HASH='$2a$14$REPLACE'\nOLLAMA_MODEL=qwen2.5-coder:3b\n",
        )
        .unwrap();
        let env = merge(&base, &gen(), false);
        assert_eq!(env.get("MUNERO_DOMAIN"), Some("203.0.113.9"));
        assert_eq!(env.get("MUNERO_TLS"), Some("internal"));
        assert!(env.missing_required().is_empty());
        // The operator's file keeps its own TLS mode; acme without a real e-mail is named.
        let env = merge(&base, &gen(), true);
        assert_eq!(env.get("MUNERO_TLS"), Some("acme"));
        // acme without a real e-mail is reported by key name.
        assert_eq!(env.missing_required(), vec!["ACME_EMAIL".to_string()]);
        let text = env.render();
        assert!(text.contains("BASIC_AUTH_HASH='$2b$12$abcdefghijklmnopqrstuv'\n"), "{text}");
        assert!(text.starts_with("# c\n"));
        assert_eq!(EnvFile::parse(&text).unwrap().get("BASIC_AUTH_HASH"), Some("$2b$12$abcdefghijklmnopqrstuv"));
    }

    #[test]
    fn gpu_trials_keep_the_nvidia_override_on_every_compose_command() {
        let base = EnvFile::parse("# COMPOSE_FILE=docker-compose.yml:docker-compose.gpu.yml\n").unwrap();
        let env = merge(&base, &Generated { gpu: true, ..gen() }, false);
        assert!(env.render().contains("\nCOMPOSE_FILE=docker-compose.yml:docker-compose.gpu.yml\n"));
        assert_eq!(merge(&base, &gen(), false).get("COMPOSE_FILE"), None);
    }

    #[test]
    fn missing_keys_are_named() {
        let env = EnvFile::parse("MUNERO_TLS=internal\nOLLAMA_MODEL=x\n").unwrap();
        assert_eq!(env.missing_required(), vec!["MUNERO_DOMAIN", "BASIC_AUTH_USER", "BASIC_AUTH_HASH"]);
    }

    #[test]
    fn bad_line_error_does_not_show_the_value() {
        let err = EnvFile::parse("GOOD=1\nsecret-value-without-equals\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && !err.contains("secret-value"), "{err}");
    }
}
