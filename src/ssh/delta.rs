//! Block-level delta against the copy the host already holds, in the spirit of rsync but without
//! its rolling checksum: SQLite changes pages in place and never shifts them, so comparing block
//! `i` with block `i` finds every change. The host sends 8 bytes per block (`sums`), this side
//! sends the runs of blocks that differ, and the host rebuilds the file into `.part` from its own
//! blocks and ours (`rebuild`). A wrong guess (a hash collision, a host copy that rotted after it
//! was hashed) cannot slip through: the host's sha256 of the rebuilt file must equal ours.
//!
//! The stream (zstd-compressed on the wire) is a list of records, ascending:
//! `start: u64 LE, count: u32 LE, data` where data is blocks `start..start+count` of the new
//! file (the last one short at its end), closed by a record whose start is `u64::MAX`.

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{helper, RemoteCmd};

pub const HASH_LEN: usize = 8;
const END: u64 = u64::MAX;
/// Blocks per record at most, so the host reads a record in one piece of bounded size.
const MAX_RUN: u32 = 256;
/// More blocks than this and the host's list of hashes (8 bytes each) outweighs what it saves.
const MAX_BLOCKS: u64 = 1 << 20;

/// The page size an SQLite header declares (bytes 16-17, big-endian; 1 means 65536).
pub fn sqlite_page_size(header: &[u8]) -> Option<u32> {
    if header.len() < 18 || !header.starts_with(b"SQLite format 3\0") {
        return None;
    }
    match u16::from_be_bytes([header[16], header[17]]) {
        1 => Some(65536),
        p if p >= 512 && p.is_power_of_two() => Some(p as u32),
        _ => None,
    }
}

/// The database's page (4 KiB for other files), doubled while smaller than 4 KiB or while the
/// file would have more than about a million blocks.
pub fn block_size(page: Option<u32>, size: u64) -> u32 {
    let mut b = page.unwrap_or(4096);
    while b < 4096 || size.div_ceil(b as u64) > MAX_BLOCKS {
        b *= 2;
    }
    b
}

pub fn file_block_size(path: &Path, size: u64) -> Result<u32> {
    let mut header = [0u8; 100];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut header))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(block_size(sqlite_page_size(&header[..n]), size))
}

pub fn nblocks(size: u64, block: u32) -> u64 {
    size.div_ceil(block as u64)
}

pub fn block_hash(b: &[u8]) -> [u8; HASH_LEN] {
    let d = Sha256::digest(b);
    d[..HASH_LEN].try_into().expect("8 of 32 bytes")
}

/// Hashes of every block of a local file, computed on two threads (one per half).
pub fn local_sums(path: &Path, block: u32) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = f.metadata()?.len();
    let n = nblocks(size, block);
    let half = n / 2;
    let range = |from: u64, to: u64| -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(((to - from) as usize) * HASH_LEN);
        let per_read = (1 << 20) / block as u64 + 1;
        let mut buf = vec![0u8; (per_read * block as u64) as usize];
        let mut i = from;
        while i < to {
            let k = per_read.min(to - i);
            let start = i * block as u64;
            let len = ((k * block as u64).min(size - start)) as usize;
            f.read_exact_at(&mut buf[..len], start).with_context(|| format!("reading {}", path.display()))?;
            for b in buf[..len].chunks(block as usize) {
                out.extend_from_slice(&block_hash(b));
            }
            i += k;
        }
        Ok(out)
    };
    let (a, b) = std::thread::scope(|s| {
        let first = s.spawn(|| range(0, half));
        let second = range(half, n);
        (first.join().expect("hashing thread"), second)
    });
    let mut all = a?;
    all.extend(b?);
    Ok(all)
}

/// Runs `(start, count)` of the new file's blocks that the host's copy does not have.
pub fn changed_runs(old: &[u8], new: &[u8]) -> Vec<(u64, u32)> {
    let old_n = old.len() / HASH_LEN;
    let mut runs: Vec<(u64, u32)> = Vec::new();
    for (i, h) in new.chunks(HASH_LEN).enumerate() {
        let same = i < old_n && old[i * HASH_LEN..(i + 1) * HASH_LEN] == *h;
        if same {
            continue;
        }
        match runs.last_mut() {
            Some((s, c)) if *s + *c as u64 == i as u64 && *c < MAX_RUN => *c += 1,
            _ => runs.push((i as u64, 1)),
        }
    }
    runs
}

/// Bytes of the new file the runs carry.
pub fn run_bytes(runs: &[(u64, u32)], size: u64, block: u32) -> u64 {
    let b = block as u64;
    runs.iter().map(|(s, c)| ((s + *c as u64) * b).min(size) - s * b).sum()
}

/// Writes the records for `runs`, reading their blocks from `file` of `size` bytes.
pub fn write_delta(w: &mut impl Write, file: &std::fs::File, size: u64, block: u32, runs: &[(u64, u32)]) -> Result<()> {
    let b = block as u64;
    let mut buf = Vec::new();
    for &(start, count) in runs {
        let from = start * b;
        let to = ((start + count as u64) * b).min(size);
        if from >= to {
            bail!("block {start} is past the end of the file");
        }
        buf.resize((to - from) as usize, 0);
        file.read_exact_at(&mut buf, from)?;
        w.write_all(&start.to_le_bytes())?;
        w.write_all(&count.to_le_bytes())?;
        w.write_all(&buf)?;
    }
    w.write_all(&END.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    Ok(())
}

/// The host's block hashes of `dest`.
pub fn sums_cmd(dest: &str, block: u32) -> RemoteCmd {
    helper::cmd("sums", [dest.to_string(), block.to_string()])
}

/// `dest` + the delta on stdin -> `dest.part`; prints its sha256.
pub fn rebuild_cmd(dest: &str, size: u64, block: u32) -> RemoteCmd {
    helper::cmd("rebuild", [dest.to_string(), format!("{dest}.part"), size.to_string(), block.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn blocks_follow_the_sqlite_page_and_stay_under_a_million() {
        let mut h = b"SQLite format 3\0".to_vec();
        h.extend([0x10, 0x00]);
        assert_eq!(sqlite_page_size(&h), Some(4096));
        h[16..18].copy_from_slice(&[0, 1]);
        assert_eq!(sqlite_page_size(&h), Some(65536));
        assert_eq!(sqlite_page_size(b"not a database at all"), None);
        assert_eq!(block_size(Some(1024), 10 << 20), 4096);
        assert_eq!(block_size(Some(8192), 700 << 20), 8192);
        assert_eq!(block_size(Some(4096), 8 << 30), 8192);
        assert_eq!(block_size(None, 100), 4096);
    }

    #[test]
    fn runs_cover_changed_and_appended_blocks() {
        let h = |v: &[u8]| v.iter().flat_map(|b| [*b; HASH_LEN]).collect::<Vec<u8>>();
        assert_eq!(changed_runs(&h(&[1, 2, 3, 4]), &h(&[1, 9, 9, 4, 5])), vec![(1, 2), (4, 1)]);
        assert_eq!(changed_runs(&h(&[1, 2]), &h(&[1, 2])), vec![]);
        assert_eq!(changed_runs(&h(&[1, 2, 3]), &h(&[1])), vec![]);
        assert_eq!(run_bytes(&[(1, 2), (4, 1)], 4 * 10 + 3, 10), 20 + 3);
    }

    fn helper(args: &[&str], stdin: &[u8]) -> (bool, String) {
        let line = helper::cmd(args[0], args[1..].iter().copied()).to_command_line();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = helper::prefix();
        input.extend_from_slice(stdin);
        let mut w = child.stdin.take().unwrap();
        let feed = std::thread::spawn(move || {
            let _ = w.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feed.join().unwrap();
        let text = if out.status.success() { out.stdout } else { out.stderr };
        (out.status.success(), String::from_latin1(text))
    }

    trait Latin1 {
        fn from_latin1(b: Vec<u8>) -> String;
    }
    impl Latin1 for String {
        fn from_latin1(b: Vec<u8>) -> String {
            b.into_iter().map(char::from).collect()
        }
    }

    /// Old file on the "host", a new one here with scattered changes, a tail cut and appended
    /// bytes: the host's sums, our runs and its rebuild give the new file, block hashes included.
    #[test]
    fn host_rebuilds_the_new_file_from_its_blocks_and_the_delta() {
        let dir = tempfile::tempdir().unwrap();
        let old_p = dir.path().join("db");
        let new_p = dir.path().join("new");
        let old: Vec<u8> = (0..1_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut new = old.clone();
        for at in [5000usize, 123_456, 500_000, 999_000] {
            new[at] ^= 0xff;
        }
        new.truncate(990_001);
        new.extend_from_slice(&[42u8; 30_000]);
        std::fs::write(&old_p, &old).unwrap();
        std::fs::write(&new_p, &new).unwrap();
        let block = 4096;
        let dest = old_p.to_str().unwrap();

        let (ok, host_sums) = helper(&["sums", dest, "4096"], b"");
        assert!(ok, "{host_sums}");
        let host_sums: Vec<u8> = host_sums.chars().map(|c| c as u8).collect();
        assert_eq!(host_sums, local_sums(&old_p, block).unwrap());
        let runs = changed_runs(&host_sums, &local_sums(&new_p, block).unwrap());
        assert!(run_bytes(&runs, new.len() as u64, block) < 60_000, "{runs:?}");
        let mut plain = Vec::new();
        write_delta(&mut plain, &std::fs::File::open(&new_p).unwrap(), new.len() as u64, block, &runs).unwrap();
        let wire = zstd::encode_all(&plain[..], 3).unwrap();

        let (ok, out) = helper(&["rebuild", dest, &format!("{dest}.part"), &new.len().to_string(), "4096"], &wire);
        assert!(ok, "{out}");
        let rebuilt = std::fs::read(format!("{dest}.part")).unwrap();
        assert!(rebuilt == new, "the rebuilt file differs");
        assert_eq!(out.trim(), crate::ssh::hashcache::sha256_bytes(&new));
        // The sums of the rebuilt file come along, for the next delta.
        let cached = std::fs::read(format!("{dest}.part.blocks")).unwrap();
        let body = &cached[cached.iter().position(|b| *b == b'\n').unwrap() + 1..];
        assert_eq!(body, &local_sums(&new_p, block).unwrap()[..]);

        // A delta cut short is refused and says why.
        let (ok, out) = helper(&["rebuild", dest, &format!("{dest}.part"), &new.len().to_string(), "4096"], &wire[..wire.len() / 2]);
        assert!(!ok && out.contains("ended early"), "{out}");
    }
}
