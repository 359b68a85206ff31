//! The pinned host key: read from the trial's store, compared byte for byte with what the server
//! presents during key exchange. There is no trust-on-first-use path.

use std::path::Path;

use anyhow::{bail, Context, Result};
use russh::keys::{HashAlg, PublicKey};

/// Reads an OpenSSH public key line (`ssh-ed25519 AAAA... comment`) or a `known_hosts` style line
/// (`host ssh-ed25519 AAAA...`) from a file.
pub fn load_pinned(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the pinned host key {}", path.display()))?;
    parse_pinned(&text).with_context(|| format!("parsing the pinned host key {}", path.display()))
}

pub fn parse_pinned(text: &str) -> Result<PublicKey> {
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Ok(key) = PublicKey::from_openssh(line) {
            return Ok(key);
        }
        // known_hosts form: the first field names the host, the rest is a public key line.
        if let Some((_, rest)) = line.split_once(char::is_whitespace) {
            if let Ok(key) = PublicKey::from_openssh(rest.trim()) {
                return Ok(key);
            }
        }
    }
    bail!("no OpenSSH public key found (expected a line such as `ssh-ed25519 AAAA...`)")
}

/// `SHA256:...` as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Same key material (comments do not count).
pub fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHlRes+A25LwgdPbHuzMaizCzO1U5dMdNpokTB9Hge+ host";

    #[test]
    fn parses_plain_and_known_hosts_lines() {
        let a = parse_pinned(KEY).unwrap();
        let b = parse_pinned(&format!("# pinned\n[1.2.3.4]:22 {KEY}\n")).unwrap();
        assert!(same_key(&a, &b));
        assert!(fingerprint(&a).starts_with("SHA256:"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_pinned("not a key").is_err());
    }
}
