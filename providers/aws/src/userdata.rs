//! User data as RunInstances takes it: base64, gzipped first when the text is over EC2's 16 KB
//! (cloud-init recognises gzip by its magic bytes and unpacks it).

use std::io::Write;

use base64::Engine;
use flate2::{write::GzEncoder, Compression};
use munero_provider::{ProviderError, Result};

/// EC2's limit on user data, before base64.
pub const LIMIT: usize = 16 * 1024;

/// The bytes to send: the text itself when it fits, else its gzip; Err when even that is over.
pub fn payload(text: &str) -> Result<Vec<u8>> {
    if text.len() <= LIMIT {
        return Ok(text.as_bytes().to_vec());
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(text.as_bytes()).and_then(|_| gz.flush()).map_err(|e| ProviderError::Other(format!("gzip: {e}")))?;
    let out = gz.finish().map_err(|e| ProviderError::Other(format!("gzip: {e}")))?;
    if out.len() > LIMIT {
        return Err(ProviderError::Invalid(format!(
            "the user-data is {} bytes ({} gzipped), over EC2's limit of {LIMIT} bytes; pass fewer --trusted-ca files",
            text.len(),
            out.len()
        )));
    }
    Ok(out)
}

/// The RunInstances `UserData` parameter.
pub fn encode(text: &str) -> Result<String> {
    Ok(base64::engine::general_purpose::STANDARD.encode(payload(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn small_user_data_goes_as_is_and_large_goes_gzipped() {
        let small = "#cloud-config\nruncmd: []\n";
        assert_eq!(payload(small).unwrap(), small.as_bytes());
        let big = format!("#cloud-config\n{}", "# padding line that compresses well\n".repeat(1000));
        let gz = payload(&big).unwrap();
        assert!(gz.len() <= LIMIT && gz.starts_with(&[0x1f, 0x8b]));
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut back).unwrap();
        assert_eq!(back, big);
    }
}
