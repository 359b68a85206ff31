//! ed25519 key generation in OpenSSH format: the trial's login key and the server's host key.

use anyhow::{Context, Result};
use ssh_key::{rand_core::OsRng, Algorithm, HashAlg, LineEnding, PrivateKey};

/// A generated key pair. `private_openssh` is secret: store it 0600, never print it.
pub struct KeyPair {
    pub private_openssh: String,
    pub public_openssh: String,
    /// `SHA256:...`
    pub fingerprint: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("public", &self.public_openssh).field("fingerprint", &self.fingerprint).finish()
    }
}

pub fn generate_ed25519(comment: &str) -> Result<KeyPair> {
    let mut key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).context("generating an ed25519 key")?;
    key.set_comment(comment);
    let private_openssh = key.to_openssh(LineEnding::LF).context("encoding the private key")?.to_string();
    let public_openssh = key.public_key().to_openssh().context("encoding the public key")?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    Ok(KeyPair { private_openssh, public_openssh, fingerprint })
}

/// Fingerprint of an OpenSSH public key line.
pub fn fingerprint_of(public_openssh: &str) -> Result<String> {
    let k = ssh_key::PublicKey::from_openssh(public_openssh.trim()).context("parsing an OpenSSH public key")?;
    Ok(k.fingerprint(HashAlg::Sha256).to_string())
}

/// Load a private key from OpenSSH text and return its pair (used when resuming a trial).
pub fn from_private(private_openssh: &str) -> Result<KeyPair> {
    let key = PrivateKey::from_openssh(private_openssh).context("parsing an OpenSSH private key")?;
    let public_openssh = key.public_key().to_openssh().context("encoding the public key")?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    Ok(KeyPair { private_openssh: private_openssh.to_string(), public_openssh, fingerprint })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_openssh_ed25519_with_sha256_fingerprint() {
        let k = generate_ed25519("munero-trial-acme").unwrap();
        assert!(k.private_openssh.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(k.public_openssh.starts_with("ssh-ed25519 "));
        assert!(k.public_openssh.ends_with(" munero-trial-acme"));
        assert!(k.fingerprint.starts_with("SHA256:"));
        assert_eq!(fingerprint_of(&k.public_openssh).unwrap(), k.fingerprint);
        let again = from_private(&k.private_openssh).unwrap();
        assert_eq!(again.fingerprint, k.fingerprint);
        assert!(!format!("{k:?}").contains("PRIVATE"));
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(generate_ed25519("a").unwrap().fingerprint, generate_ed25519("a").unwrap().fingerprint);
    }
}
