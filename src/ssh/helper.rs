//! The host helper (`upload_helper.py`) and the command that starts it. Its code goes ahead of
//! the data on the channel's stdin, so the command line stays short, the host keeps no copy,
//! and every host runs the helper of the binary that talks to it.

use super::RemoteCmd;

pub const CODE: &str = include_str!("upload_helper.py");

/// Reads exactly the helper's length from stdin (unbuffered, so the data after it stays for
/// `zstd`), then runs it with the remaining arguments.
const BOOT: &str = "import os,sys\nn=int(sys.argv.pop(1));b=b\"\"\nwhile len(b)<n:\n c=os.read(0,n-len(b))\n if not c:sys.exit(\"upload helper: its code arrived cut\")\n b+=c\nexec(compile(b,\"munero-upload-helper\",\"exec\"))";

/// `python3 -c BOOT <len> <mode> <args...>`; stdin must start with `CODE`.
pub fn cmd<I, S>(mode: &str, args: I) -> RemoteCmd
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut words = vec!["python3".to_string(), "-c".into(), BOOT.into(), CODE.len().to_string(), mode.into()];
    words.extend(args.into_iter().map(Into::into));
    RemoteCmd::Argv(words)
}

/// What goes first on the channel's stdin.
pub fn prefix() -> Vec<u8> {
    CODE.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// The helper runs from the start of stdin and leaves the rest of it to zstd, as on a host.
    #[test]
    fn helper_receives_a_zstd_stream_written_after_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("f.part");
        std::fs::write(&part, b"kept-").unwrap();
        let line = cmd("receive", [part.to_str().unwrap(), "5"]).to_command_line();
        let mut child = Command::new("sh").arg("-c").arg(&line).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut input = prefix();
        input.extend(zstd::encode_all(&b"and the rest"[..], 3).unwrap());
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(std::fs::read(&part).unwrap(), b"kept-and the rest");
        let sha = crate::ssh::hashcache::sha256_bytes(b"kept-and the rest");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), sha);
    }
}
