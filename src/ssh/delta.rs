//! Block-level delta against the copy the host already holds, in the spirit of rsync but without
//! its rolling checksum: SQLite changes pages in place and never shifts them, so comparing block
//! `i` with block `i` finds every change. The host sends 8 bytes per block (`sums`), this side
//! sends the runs of blocks that differ, and the host rebuilds the file into `.part` from its own
//! blocks and ours (`rebuild`). A wrong guess (a hash collision, a host copy that rotted after it
//! was hashed) cannot slip through: the host's sha256 of the rebuilt file must equal ours.
//!
//! The stream (zstd-compressed on the wire) is a list of records, ascending:
//! `start: u64 LE, count: u32 LE, data` where data is blocks `start..start+count` of the new
//! file (the last one short at its end), closed by a record whose start is `u64::MAX` and the
//! 32 bytes of the sha256 the rebuilt file must have: the host renames it into place itself
//! when it does, so a redeploy of changed pages takes one exec.

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};
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

/// CRC-32 and Adler-32 of a block, big-endian: cheap on both sides (SIMD here, zlib in the
/// host's python), where a truncated sha256 cost a second full hash of every file sent. No
/// adversary chooses these blocks, and a block wrongly taken as unchanged is caught by the
/// whole file's sha256 on the host, which then gets the whole file.
pub fn block_hash(b: &[u8]) -> [u8; HASH_LEN] {
    let mut a = simd_adler32::Adler32::new();
    a.write(b);
    let mut out = [0u8; HASH_LEN];
    out[..4].copy_from_slice(&crc32fast::hash(b).to_be_bytes());
    out[4..].copy_from_slice(&a.finish().to_be_bytes());
    out
}

/// Hashes of every block of a local file, computed on two threads (one per half).
#[cfg(test)]
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

/// Reads `file` (of `size` bytes) once, from the start, and writes a record for every run of
/// blocks whose hash differs from `old` (the host's copy's), as it finds them, so the host
/// rebuilds while this side reads. Returns the new file's block hashes and the bytes the
/// records carry; the caller ends the stream (`write_end`).
pub fn write_changes(w: &mut impl Write, file: &std::fs::File, size: u64, block: u32, old: &[u8]) -> Result<(Vec<u8>, u64)> {
    let b = block as usize;
    let per_read = MAX_RUN as usize;
    let mut buf = vec![0u8; per_read * b];
    let mut sums = Vec::with_capacity(nblocks(size, block) as usize * HASH_LEN);
    let (mut at, mut plain) = (0u64, 0u64);
    while at < size {
        let len = (buf.len() as u64).min(size - at) as usize;
        file.read_exact_at(&mut buf[..len], at)?;
        let first = at / block as u64;
        let mut run: Option<(usize, usize)> = None;
        let blocks: Vec<&[u8]> = buf[..len].chunks(b).collect();
        for (k, data) in blocks.iter().enumerate() {
            let h = block_hash(data);
            sums.extend_from_slice(&h);
            let i = first as usize + k;
            let same = old.get(i * HASH_LEN..(i + 1) * HASH_LEN) == Some(&h[..]);
            match (same, run) {
                (false, None) => run = Some((k, k + 1)),
                (false, Some((s, _))) => run = Some((s, k + 1)),
                (true, Some(r)) => {
                    plain += write_record(w, first, &buf[..len], b, r)?;
                    run = None;
                }
                (true, None) => {}
            }
        }
        if let Some(r) = run {
            plain += write_record(w, first, &buf[..len], b, r)?;
        }
        at += len as u64;
    }
    Ok((sums, plain))
}

/// Blocks `r.0..r.1` of `buf` (whose first block is `first`) as one record.
fn write_record(w: &mut impl Write, first: u64, buf: &[u8], b: usize, r: (usize, usize)) -> Result<u64> {
    let data = &buf[r.0 * b..(r.1 * b).min(buf.len())];
    w.write_all(&(first + r.0 as u64).to_le_bytes())?;
    w.write_all(&((r.1 - r.0) as u32).to_le_bytes())?;
    w.write_all(data)?;
    Ok(data.len() as u64)
}

/// The end of a delta: the closing record and the sha256 (hex) the rebuilt file must have.
pub fn write_end(w: &mut impl Write, sha256: &str) -> Result<()> {
    w.write_all(&END.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&hex::decode(sha256).context("the file's sha256 is not hex")?)?;
    Ok(())
}

/// The host's block hashes of `dest`.
pub fn sums_cmd(dest: &str, block: u32) -> RemoteCmd {
    helper::cmd("sums", [dest.to_string(), block.to_string()])
}

/// `dest` + the delta on stdin -> `dest.part`, renamed over `dest` with `mode` when its sha256
/// is the one the delta ends with; prints that sha256.
pub fn rebuild_cmd(dest: &str, size: u64, block: u32, mode: u32) -> RemoteCmd {
    helper::cmd(
        "rebuild",
        [dest.to_string(), format!("{dest}.part"), size.to_string(), block.to_string(), format!("{mode:o}")],
    )
}

/// The sha256 of a whole file (unless already known) and its block hashes, fed in order.
pub struct FileDigests {
    pub sha: Option<Sha256>,
    pub sums: BlockSums,
}

impl FileDigests {
    pub fn new(hash_whole: bool, block: u32) -> FileDigests {
        FileDigests { sha: hash_whole.then(Sha256::new), sums: BlockSums::new(block) }
    }

    /// (hex sha256 if it was computed, block hashes).
    pub fn finish(self) -> (Option<String>, Vec<u8>) {
        (self.sha.map(|h| hex::encode(h.finalize())), self.sums.finish())
    }
}

impl Write for FileDigests {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Some(h) = self.sha.as_mut() {
            h.update(b);
        }
        self.sums.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hashes of the blocks of a stream, fed in pieces of any size.
pub struct BlockSums {
    block: usize,
    carry: Vec<u8>,
    out: Vec<u8>,
}

impl BlockSums {
    pub fn new(block: u32) -> BlockSums {
        BlockSums { block: block as usize, carry: Vec::new(), out: Vec::new() }
    }

    pub fn update(&mut self, mut b: &[u8]) {
        if !self.carry.is_empty() {
            let take = (self.block - self.carry.len()).min(b.len());
            self.carry.extend_from_slice(&b[..take]);
            b = &b[take..];
            if self.carry.len() < self.block {
                return;
            }
            self.out.extend_from_slice(&block_hash(&self.carry));
            self.carry.clear();
        }
        let whole = b.len() / self.block * self.block;
        for c in b[..whole].chunks(self.block) {
            self.out.extend_from_slice(&block_hash(c));
        }
        self.carry.extend_from_slice(&b[whole..]);
    }

    pub fn finish(mut self) -> Vec<u8> {
        if !self.carry.is_empty() {
            self.out.extend_from_slice(&block_hash(&self.carry));
        }
        self.out
    }
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
    fn block_sums_of_a_stream_in_odd_pieces_are_those_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let mut s = BlockSums::new(4096);
        for piece in data.chunks(3001) {
            s.update(piece);
        }
        assert_eq!(s.finish(), local_sums(&p, 4096).unwrap());
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
        let new_sha = crate::ssh::hashcache::sha256_bytes(&new);
        let delta_to = |sha: &str| {
            let mut plain = Vec::new();
            let f = std::fs::File::open(&new_p).unwrap();
            let (sums, carried) = write_changes(&mut plain, &f, new.len() as u64, block, &host_sums).unwrap();
            write_end(&mut plain, sha).unwrap();
            assert_eq!(sums, local_sums(&new_p, block).unwrap());
            // The three changed blocks, then the one cut short and those appended.
            assert_eq!(carried, 3 * 4096 + (new.len() as u64 - 241 * 4096), "{carried}");
            zstd::encode_all(&plain[..], 3).unwrap()
        };
        let wire = delta_to(&new_sha);
        let rebuild = |wire: &[u8]| helper(&["rebuild", dest, &format!("{dest}.part"), &new.len().to_string(), "4096", "640"], wire);

        // A delta cut short is refused and says why; the host's copy stays.
        let (ok, out) = rebuild(&wire[..wire.len() / 2]);
        assert!(!ok && out.contains("ended early"), "{out}");
        assert!(std::fs::read(&old_p).unwrap() == old);

        let (ok, out) = rebuild(&wire);
        assert!(ok, "{out}");
        assert_eq!(out.trim(), new_sha);
        assert!(std::fs::read(&old_p).unwrap() == new, "the rebuilt file differs");
        assert!(!Path::new(&format!("{dest}.part")).exists());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&old_p).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_to_string(format!("{dest}.sha256")).unwrap().trim(), new_sha);
        // The sums of the rebuilt file come along, for the next delta.
        let cached = std::fs::read(format!("{dest}.blocks")).unwrap();
        let body = &cached[cached.iter().position(|b| *b == b'\n').unwrap() + 1..];
        assert_eq!(body, &local_sums(&new_p, block).unwrap()[..]);

        // A delta that ends with another hash than the rebuilt file's leaves the copy as it
        // was and drops the block hashes that misled it.
        let (ok, out) = rebuild(&delta_to(&"ab".repeat(32)));
        assert!(ok, "{out}");
        assert!(std::fs::read(&old_p).unwrap() == new && !Path::new(&format!("{dest}.part")).exists());
        assert!(!Path::new(&format!("{dest}.blocks")).exists());
    }
}
