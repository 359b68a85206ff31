//! zstd on the wire: plain bytes written on a thread go through a multi-threaded zstd encoder
//! into a bounded queue that the SSH channel drains as its stdin.
//!
//! The level follows the link, as `zstd --adapt` does: the share of a stretch of input the
//! encoder spent waiting for the queue to drain says the link is the bottleneck (one level up,
//! a smaller stream for the same link), no waiting says the CPU is (one level down). One level
//! per stretch: zstd applies a new level from its next job on, so a stretch still shows part of
//! the previous level, and bigger jumps (tried) swung between levels 9 and -5 on a file whose
//! index pages compress 20x and table pages 3x. zstd changes the level within the same frame,
//! so the host sees one ordinary zstd stream.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Where the level starts: zstd's default, fast enough for a 1 Gbit/s link on 2 cores.
pub const START_LEVEL: i32 = 3;
/// Negative levels trade ratio for speed when even level 1 cannot keep up with the link.
pub const MIN_LEVEL: i32 = -5;
/// How far the level climbs by itself. Measured on the generator's SQLite pages with 2 workers
/// beside SSH and hashing: level 6 and 7 compress 3.7x and 3.8x at about 50 MB/s of input,
/// 8 and 9 only 1-4% smaller but CPU-bound below what a 100 Mbit/s link takes; a climb by
/// the waiting share swings between them. A slower link's measured rate picks a higher level
/// (`start_level_for`), which is then the ceiling.
pub const MAX_LEVEL: i32 = 6;
/// Where a link measured under 15 MB/s (about 120 Mbit/s) starts and stays at most.
pub const LINK_LEVEL: i32 = 7;
/// Where a link measured under 5 MB/s (about 40 Mbit/s) starts: level 12 compresses about 8%
/// smaller than 7 at some 30 MB/s of input, twice what such a link takes.
pub const SLOW_LINK_LEVEL: i32 = 12;
/// Input between two looks at the link: about two zstd jobs at the middle levels.
const ADAPT_EVERY: u64 = 64 << 20;

/// One stretch of input: its duration and the part of it spent waiting for the link.
#[derive(Debug, Clone, Copy)]
pub struct Stretch {
    pub elapsed: Duration,
    pub blocked: Duration,
}

/// The level for the next stretch.
pub fn next_level(level: i32, s: Stretch, ceiling: i32) -> i32 {
    let share = s.blocked.as_secs_f64() / s.elapsed.as_secs_f64().max(1e-9);
    if share > 0.3 {
        (level + 1).min(ceiling.max(level))
    } else if share < 0.05 {
        (level - 1).max(MIN_LEVEL)
    } else {
        level
    }
}

/// What one compressed stream cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Plain bytes that went into the encoder.
    pub plain: u64,
    /// Compressed bytes handed to the channel.
    pub wire: u64,
    /// The level at the end of the stream.
    pub level: i32,
}

/// The sending end: compressed bytes into the queue, counting them and the time spent waiting.
struct QueueWriter {
    tx: mpsc::Sender<Vec<u8>>,
    wire: Arc<AtomicU64>,
    blocked: Duration,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = Instant::now();
        self.tx
            .blocking_send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the SSH channel closed"))?;
        self.blocked += t.elapsed();
        self.wire.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Write` for the producer: compresses, adapts the level, reports progress in plain bytes.
pub struct Compressor {
    enc: zstd::stream::write::Encoder<'static, QueueWriter>,
    level: i32,
    plain: u64,
    window_start: Instant,
    window_blocked: Duration,
    next_look: u64,
    adapt: bool,
    ceiling: i32,
    on_plain: Option<Box<dyn Fn(u64) + Send>>,
}

impl Compressor {
    fn set_level(&mut self, level: i32) -> io::Result<()> {
        self.enc.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))?;
        self.level = level;
        Ok(())
    }

    fn finish(self) -> io::Result<WireStats> {
        let (level, plain) = (self.level, self.plain);
        let w = self.enc.finish()?;
        Ok(WireStats { plain, wire: w.wire.load(Ordering::Relaxed), level })
    }
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.enc.write(buf)?;
        self.plain += n as u64;
        if let Some(f) = &self.on_plain {
            f(self.plain);
        }
        if self.adapt && self.plain >= self.next_look {
            let blocked = self.enc.get_ref().blocked;
            let stretch = Stretch { elapsed: self.window_start.elapsed(), blocked: blocked - self.window_blocked };
            let level = next_level(self.level, stretch, self.ceiling);
            if level != self.level {
                tracing::debug!("zstd level {} -> {level} after {stretch:?}", self.level);
                self.set_level(level)?;
            }
            self.window_start = Instant::now();
            self.window_blocked = blocked;
            self.next_look = self.plain + ADAPT_EVERY;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

/// Where the level starts on a link measured at `rate` bytes/s: a link that level 7's output
/// fills (about 50 MB/s of input at 3.8x) starts there rather than climbing stretch by stretch,
/// a much slower one higher still; a pinned level stays.
pub fn start_level_for(rate: f64, level: Level) -> Level {
    match rate {
        _ if !level.adapt => level,
        r if r < 5e6 => Level { start: SLOW_LINK_LEVEL, adapt: true },
        r if r < 15e6 => Level { start: LINK_LEVEL, adapt: true },
        _ => level,
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Level {
    pub start: i32,
    /// Follow the link (false: keep `start`, for repeatable tests and benchmarks).
    pub adapt: bool,
}

impl Level {
    /// `MUNERO_ZSTD_LEVEL=N` pins the level; otherwise it starts at 3 and follows the link.
    pub fn from_env() -> Level {
        match std::env::var("MUNERO_ZSTD_LEVEL").ok().and_then(|v| v.parse::<i32>().ok()) {
            Some(l) => Level { start: l.clamp(MIN_LEVEL, 19), adapt: false },
            None => Level { start: START_LEVEL, adapt: true },
        }
    }
}

/// Runs `produce` on a thread, writing plain bytes into a compressor; returns the stream to give
/// the channel (after `prefix`, sent as is) and the thread's outcome. When `produce` fails the
/// stream ends without closing its zstd frame, so the host's `zstd -d` fails too and nothing
/// half-written is taken for the whole.
pub fn spawn<T, F>(
    prefix: Vec<u8>,
    level: Level,
    on_plain: Option<Box<dyn Fn(u64) + Send>>,
    produce: F,
) -> Result<(QueueReader, std::thread::JoinHandle<Result<(T, WireStats)>>)>
where
    T: Send + 'static,
    F: FnOnce(&mut Compressor) -> Result<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
    let wire = Arc::new(AtomicU64::new(0));
    let writer = QueueWriter { tx, wire, blocked: Duration::ZERO };
    let mut enc = zstd::stream::write::Encoder::new(writer, level.start).context("starting zstd")?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    enc.multithread(workers).context("zstd worker threads")?;
    enc.include_checksum(true)?;
    let mut c = Compressor {
        enc,
        level: level.start,
        plain: 0,
        window_start: Instant::now(),
        window_blocked: Duration::ZERO,
        next_look: ADAPT_EVERY,
        adapt: level.adapt,
        ceiling: level.start.max(MAX_LEVEL),
        on_plain,
    };
    let handle = std::thread::Builder::new()
        .name("zstd-send".into())
        .spawn(move || {
            let out = produce(&mut c)?;
            let stats = c.finish().context("finishing the zstd stream")?;
            Ok((out, stats))
        })
        .context("starting the compression thread")?;
    Ok((QueueReader { rx, cur: prefix, pos: 0 }, handle))
}

/// The receiving end as the channel's stdin: ends when the thread drops its queue.
pub struct QueueReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl AsyncRead for QueueReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.pos < me.cur.len() {
                let n = buf.remaining().min(me.cur.len() - me.pos);
                buf.put_slice(&me.cur[me.pos..me.pos + n]);
                me.pos += n;
                return Poll::Ready(Ok(()));
            }
            match me.rx.poll_recv(cx) {
                Poll::Ready(Some(v)) => {
                    me.cur = v;
                    me.pos = 0;
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Waits for the thread without blocking the runtime.
pub async fn join<T: Send + 'static>(h: std::thread::JoinHandle<Result<T>>) -> Result<T> {
    tokio::task::spawn_blocking(move || h.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the compression thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn level_rises_while_the_link_waits_and_falls_while_the_cpu_does() {
        let st = |secs: u64, waited_ms: u64| Stretch { elapsed: Duration::from_secs(secs), blocked: Duration::from_millis(waited_ms) };
        assert_eq!(next_level(3, st(2, 1000), MAX_LEVEL), 4);
        assert_eq!(next_level(3, st(2, 0), MAX_LEVEL), 2);
        assert_eq!(next_level(3, st(2, 300), MAX_LEVEL), 3);
        assert_eq!(next_level(MAX_LEVEL, st(2, 1900), MAX_LEVEL), MAX_LEVEL);
        assert_eq!(next_level(LINK_LEVEL - 1, st(2, 1900), LINK_LEVEL), LINK_LEVEL);
        assert_eq!(next_level(LINK_LEVEL, st(2, 1900), LINK_LEVEL), LINK_LEVEL);
        assert_eq!(next_level(MIN_LEVEL, st(2, 0), MAX_LEVEL), MIN_LEVEL);
    }

    #[test]
    fn a_slower_link_starts_at_a_higher_level_and_a_pinned_level_stays() {
        let auto = Level { start: START_LEVEL, adapt: true };
        assert_eq!(start_level_for(2.5e6, auto).start, SLOW_LINK_LEVEL);
        assert_eq!(start_level_for(11.8e6, auto).start, LINK_LEVEL);
        assert_eq!(start_level_for(40e6, auto).start, START_LEVEL);
        assert_eq!(start_level_for(2.5e6, Level { start: 1, adapt: false }).start, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_is_the_prefix_then_one_zstd_stream_of_the_input() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let input = data.clone();
        let level = Level { start: 1, adapt: true };
        let (mut r, h) = spawn(b"HEAD".to_vec(), level, None, move |c| {
            for chunk in input.chunks(100_000) {
                c.write_all(chunk)?;
            }
            Ok(7)
        })
        .unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).await.unwrap();
        let (seven, stats) = join(h).await.unwrap();
        assert_eq!(seven, 7);
        assert_eq!(&all[..4], b"HEAD");
        assert_eq!(stats.wire as usize, all.len() - 4);
        assert_eq!(stats.plain as usize, data.len());
        assert!(stats.wire < stats.plain / 10);
        assert_eq!(zstd::decode_all(&all[4..]).unwrap(), data);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_producer_leaves_a_stream_zstd_rejects() {
        let (mut r, h) = spawn(Vec::new(), Level { start: 3, adapt: false }, None, |c| -> Result<()> {
            c.write_all(&vec![7u8; 5 << 20])?;
            anyhow::bail!("disk read failed")
        })
        .unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).await.unwrap();
        assert!(join(h).await.is_err());
        assert!(zstd::decode_all(&all[..]).is_err());
    }
}
