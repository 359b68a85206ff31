//! The stack's `.env`: parsed, merged with the generated values (domain, TLS mode, Basic Auth
//! hash), checked for the required keys. Values are never printed: errors and plans name keys only.

use std::path::Path;

use anyhow::{Context, Result};

use crate::error::usage;

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
    /// Reads the file as docker compose's env-file reader (compose-go `dotenv`) does, so the
    /// value kept for a key is the one the stack would have seen from this file. What that
    /// reader would take from elsewhere (a `$NAME` reference) is refused, naming the key only.
    pub fn parse(text: &str) -> Result<EnvFile> {
        let mut lines = Vec::new();
        let mut rest = text;
        let mut n = 0;
        while !rest.is_empty() {
            n += 1;
            let (raw, after) = split_line(rest);
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                lines.push(Line::Other(raw.trim_end_matches('\r').to_string()));
                rest = after;
                continue;
            }
            let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
            let Some((k, v)) = t.split_once('=') else {
                return Err(usage(format!("line {n}: expected KEY=VALUE (the value is not shown)")));
            };
            let key = k.trim().to_string();
            if key.is_empty()
                || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                || key.as_bytes()[0].is_ascii_digit()
            {
                return Err(usage(format!("line {n}: {key:?} is not a valid variable name")));
            }
            // The value may run over several lines (a quoted value with newlines): parse it from
            // the remaining text, not from this line alone.
            let start = v.as_ptr() as usize - rest.as_ptr() as usize;
            let (value, after) = parse_value(&rest[start..], &key, n)?;
            n += rest[..rest.len() - after.len()].matches('\n').count().saturating_sub(1);
            lines.push(Line::Pair { key, value });
            rest = after;
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

    /// Keys of REQUIRED_KEYS that are missing or empty. (ACME_EMAIL is optional: an ACME
    /// account needs no contact address.)
    pub fn missing_required(&self) -> Vec<String> {
        REQUIRED_KEYS
            .iter()
            .filter(|k| self.get(k).map_or(true, |v| v.trim().is_empty()))
            .map(|k| k.to_string())
            .collect()
    }

    /// Render for Docker Compose: every value quoted so that compose reads back exactly the
    /// stored value (see [`quote_value`]).
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

/// `(line, rest after its newline)`.
fn split_line(s: &str) -> (&str, &str) {
    match s.find('\n') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn refuse(n: usize, key: &str, why: &str) -> anyhow::Error {
    usage(format!("line {n}: {key}: {why} (the value is not shown)"))
}

/// One value as compose-go's dotenv parser reads it: single quotes literal, except that `\'`
/// stands for `'`; double quotes with `\"`, `\\`, `\n`-style escapes and `$` interpolation;
/// unquoted to the end of the line, cut at ` #`, with `$` interpolation. Returns the value and
/// the text after its line.
fn parse_value<'a>(src: &'a str, key: &str, n: usize) -> Result<(String, &'a str)> {
    let src = src.trim_start_matches([' ', '\t']);
    let q = match src.chars().next() {
        Some(c @ ('\'' | '"')) => c,
        _ => {
            let (line, after) = split_line(src);
            let v = match line.find(" #") {
                Some(i) => &line[..i],
                None => line,
            };
            return Ok((interpolate(v.trim_end(), key, n)?, after));
        }
    };
    let mut raw = String::new();
    let mut escaped = false;
    for (i, c) in src[1..].char_indices() {
        if c != q {
            if !escaped && c == '\\' {
                escaped = true;
                continue;
            }
            if escaped {
                escaped = false;
                raw.push('\\');
            }
            raw.push(c);
            continue;
        }
        if escaped {
            escaped = false;
            raw.push(c);
            continue;
        }
        let (tail, after) = split_line(&src[1 + i + 1..]);
        let tail = tail.trim();
        if !tail.is_empty() && !tail.starts_with('#') {
            return Err(refuse(n, key, "unexpected text after the closing quote"));
        }
        let value = if q == '"' { interpolate(&unescape(&raw, key, n)?, key, n)? } else { raw };
        return Ok((value, after));
    }
    Err(refuse(n, key, &format!("the value opens with {q} but has no closing {q}")))
}

/// The escapes compose expands inside double quotes. A `\$` becomes `$$`, which
/// [`interpolate`] then reads as a literal `$`, as compose does.
fn unescape(raw: &str, key: &str, n: usize) -> Result<String> {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = match it.peek() {
            Some('n') => "\n",
            Some('r') => "\r",
            Some('t') => "\t",
            Some('a') => "\x07",
            Some('b') => "\x08",
            Some('f') => "\x0c",
            Some('v') => "\x0b",
            Some('$') => "$$",
            Some('"') => "\"",
            Some('\\') => "\\",
            Some('0') => return Err(refuse(n, key, "octal escapes (\\0NNN) are not supported; write the character itself")),
            _ => {
                out.push('\\');
                continue;
            }
        };
        it.next();
        out.push_str(e);
    }
    Ok(out)
}

/// Compose's interpolation: `$$` is a `$`; `$NAME` and `${...}` take a value from the host's
/// environment or an earlier line, which is not this file's value and could differ on the
/// host: refused. Any other `$` is kept.
fn interpolate(v: &str, key: &str, n: usize) -> Result<String> {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars().peekable();
    while let Some(c) = it.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match it.peek() {
            Some('$') => {
                it.next();
                out.push('$');
            }
            Some(&d) if d == '{' || d == '_' || d.is_ascii_alphabetic() => {
                return Err(refuse(
                    n,
                    key,
                    "the value refers to a variable ($NAME or ${...}) that docker compose would \
                     replace; write $$ for a literal $, or put the value in single quotes",
                ));
            }
            _ => out.push('$'),
        }
    }
    Ok(out)
}

/// Writes a value so that compose's env-file reader gives back exactly `v`: plain values as
/// they are; otherwise single quotes (literal, and what operators expect for a bcrypt hash)
/// when `v` has no `'`, no line break and does not end in `\` (which would escape the closing
/// quote); else double quotes with `\\`, `\"`, `\n`, `\r` escaped and `$` doubled.
fn quote_value(v: &str) -> String {
    let plain = v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:,+@%=".contains(&b));
    if plain {
        return v.to_string();
    }
    if !v.contains(['\'', '\n', '\r']) && !v.ends_with('\\') {
        return format!("'{v}'");
    }
    let mut s = String::with_capacity(v.len() + 8);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '$' => s.push_str("$$"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
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
    /// The ACME directory for the chosen certificate source (none with Caddy's own CA).
    pub acme_ca: Option<String>,
    pub basic_auth_user: String,
    pub basic_auth_hash: String,
    pub model: Option<String>,
    /// GPU trial: every compose command (also restarts and the wipe script) must include the
    /// NVIDIA override, which COMPOSE_FILE in .env does.
    pub gpu: bool,
    /// A software-emulated rehearsal VM: the assistant's SQL time limit, tuned for real
    /// servers, is raised (unless the operator's env file sets one).
    pub emulated: bool,
}

/// The assistant's SQL time limit on a software-emulated VM, seconds.
pub const EMULATED_SQL_TIMEOUT_S: &str = "30";

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
    if let Some(ca) = keep("MUNERO_ACME_CA").or_else(|| gen.acme_ca.clone()) {
        env.set("MUNERO_ACME_CA", &ca);
    }
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
    if gen.emulated && keep("SQL_TIMEOUT").is_none() {
        env.set("SQL_TIMEOUT", EMULATED_SQL_TIMEOUT_S);
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
            acme_ca: None,
            basic_auth_user: "acme".into(),
            basic_auth_hash: "$2b$12$abcdefghijklmnopqrstuv".into(),
            model: None,
            gpu: false,
            emulated: false,
        }
    }

    #[test]
    fn an_emulated_vm_gets_a_longer_sql_limit_unless_the_operator_set_one() {
        let none = EnvFile::parse("SQL_TIMEOUT=\n").unwrap();
        assert_eq!(merge(&none, &Generated { emulated: true, ..gen() }, false).get("SQL_TIMEOUT"), Some(EMULATED_SQL_TIMEOUT_S));
        assert_eq!(merge(&none, &gen(), false).get("SQL_TIMEOUT"), Some(""), "real servers keep the default");
        let own = EnvFile::parse("SQL_TIMEOUT=12\n").unwrap();
        assert_eq!(merge(&own, &Generated { emulated: true, ..gen() }, true).get("SQL_TIMEOUT"), Some("12"));
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
        // The operator's file keeps its own TLS mode; the placeholder e-mail is dropped (an ACME
        // account needs none), so nothing is missing.
        let env = merge(&base, &gen(), true);
        assert_eq!(env.get("MUNERO_TLS"), Some("acme"));
        assert_eq!(env.get("ACME_EMAIL"), Some(""));
        assert!(env.missing_required().is_empty());
        let text = env.render();
        assert!(text.contains("BASIC_AUTH_HASH='$2b$12$abcdefghijklmnopqrstuv'\n"), "{text}");
        assert!(text.starts_with("# c\n"));
        assert_eq!(EnvFile::parse(&text).unwrap().get("BASIC_AUTH_HASH"), Some("$2b$12$abcdefghijklmnopqrstuv"));
    }

    #[test]
    fn the_acme_directory_is_the_chosen_one_unless_the_operator_names_another() {
        let staging = Generated { tls: "acme".into(), acme_ca: Some(crate::site::LETS_ENCRYPT_STAGING.into()), ..gen() };
        let env = merge(&EnvFile::parse("").unwrap(), &staging, false);
        assert_eq!(env.get("MUNERO_ACME_CA"), Some(crate::site::LETS_ENCRYPT_STAGING));
        let own = EnvFile::parse("MUNERO_ACME_CA=https://acme.internal.example.net/directory\n").unwrap();
        assert_eq!(merge(&own, &staging, true).get("MUNERO_ACME_CA"), Some("https://acme.internal.example.net/directory"));
        assert_eq!(merge(&EnvFile::parse("").unwrap(), &gen(), false).get("MUNERO_ACME_CA"), None);
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

    /// Values with every character the env-file syntax treats specially, each alone and mixed.
    const SPECIAL: &[&str] = &[
        "it's-a-secret", "'", "''", "\"", "say \"hi\"", "\"quoted\"", "$", "$$", "a$b", "$2b$12$abc",
        "$HOME", "${HOME}", "\\", "back\\slash", "ends\\", "ends\\\\", "a\\nb", "\\'", "\\\"", "#", "#start",
        "x # not a comment", "two words", " leading and trailing ", "line1\nline2", "\n", "cr\rx",
        "tab\there", "it's \"all\" $HOME \\ # x\n'", "", "caf\u{e9} \u{20ac}",
    ];

    #[test]
    fn every_special_character_round_trips_through_render_and_parse() {
        for v in SPECIAL {
            let mut env = EnvFile::default();
            env.set("K", v);
            let text = env.render();
            let back = EnvFile::parse(&text).unwrap_or_else(|e| panic!("{v:?} rendered as {text:?}: {e:#}"));
            assert_eq!(back.get("K"), Some(*v), "rendered as {text:?}");
        }
    }

    #[test]
    fn quoting_is_the_simplest_that_compose_reads_back() {
        let line = |v: &str| {
            let mut e = EnvFile::default();
            e.set("K", v);
            e.render()
        };
        assert_eq!(line("plain-1.2:3"), "K=plain-1.2:3\n");
        assert_eq!(line("it's-a-secret"), "K=\"it's-a-secret\"\n");
        assert_eq!(line("$2b$12$abc"), "K='$2b$12$abc'\n");
        assert_eq!(line("a \"b\" # c"), "K='a \"b\" # c'\n");
        assert_eq!(line("it's $x \\ \"y\"\nz"), "K=\"it's $$x \\\\ \\\"y\\\"\\nz\"\n");
        assert_eq!(line("ends\\"), "K=\"ends\\\\\"\n");
        assert_eq!(line(""), "K=\n");
    }

    /// What compose-go's dotenv reader gives for each line (its own test cases and rules).
    #[test]
    fn operator_files_are_read_as_compose_reads_them() {
        let cases: &[(&str, &str)] = &[
            ("A=it's-a-secret", "it's-a-secret"),
            ("A='it\\'s'", "it's"),
            ("A='a\\nb'", "a\\nb"),
            ("A='$x ${y}'", "$x ${y}"),
            ("A=\"a\\\"b\"", "a\"b"),
            ("A=\"a\\\\b\"", "a\\b"),
            ("A=\"l1\\nl2\"", "l1\nl2"),
            ("A=\"it's\"", "it's"),
            ("A=\"$$x \\$y\"", "$x $y"),
            ("A=$$x", "$x"),
            ("A=$2b$12$./x", "$2b$12$./x"),
            ("A=x #c", "x"),
            ("A=x#c", "x#c"),
            ("A = spaced  ", "spaced"),
            ("export A=1", "1"),
            ("A='x' # why", "x"),
            ("A=a\\nb", "a\\nb"),
            ("A=\"multi\nline\"", "multi\nline"),
            ("A=crlf\r", "crlf"),
        ];
        for (text, want) in cases {
            let env = EnvFile::parse(&format!("{text}\nB=after\n")).unwrap_or_else(|e| panic!("{text:?}: {e:#}"));
            assert_eq!(env.get("A"), Some(*want), "{text:?}");
            assert_eq!(env.get("B"), Some("after"), "{text:?}");
        }
    }

    #[test]
    fn values_compose_would_change_are_refused_by_key_without_the_value() {
        for text in [
            "SECRET=pre${HOME}post",
            "SECRET=pre$HOME",
            "SECRET=\"pre$HOME\"",
            "SECRET='pre-unterminated",
            "SECRET=\"pre-unterminated",
            "SECRET='pre' post",
        ] {
            let err = EnvFile::parse(&format!("OK=1\n{text}\n")).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains("line 2: SECRET:"), "{text}: {msg}");
            assert!(!msg.contains("pre"), "the value leaked: {msg}");
            assert_eq!(crate::error::exit_code_of(&err), 2, "{text}");
        }
    }

    /// The same values through docker compose's own reader, when this machine has it.
    #[test]
    fn docker_compose_reads_every_rendered_value_back_unchanged() {
        let has = std::process::Command::new("docker").args(["compose", "version"]).output();
        if !has.is_ok_and(|o| o.status.success()) {
            eprintln!("skipped: no docker compose here");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let mut env = EnvFile::default();
        for (i, v) in SPECIAL.iter().enumerate() {
            env.set(&format!("K{i}"), v);
        }
        std::fs::write(d.path().join(".env"), env.render()).unwrap();
        std::fs::write(d.path().join("c.yml"), "services:\n  p:\n    image: busybox\n    env_file: [.env]\n").unwrap();
        let out = std::process::Command::new("docker")
            .args(["compose", "-f", "c.yml", "config", "--format", "json"])
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = &cfg["services"]["p"]["environment"];
        for (i, v) in SPECIAL.iter().enumerate() {
            // `config` prints a compose file, where a literal `$` is written `$$`.
            let want = v.replace('$', "$$");
            let k = format!("K{i}");
            let got = got[&k].as_str().unwrap_or("");
            assert_eq!(got, want, "{v:?} rendered as {:?}", env.render().lines().nth(i));
        }
    }
}
