//! SSH to a trial host over russh: one connection per command, a channel per remote exec, the
//! host key pinned to the one recorded at create (no trust on first use), exit status and stderr
//! of every remote command captured.

pub mod cmd;
pub mod compress;
pub mod delta;
pub mod hashcache;
pub mod helper;
pub mod hostkey;
mod quickack;
pub mod sftp_put;
pub mod transfer;
pub mod upload;
pub mod zsend;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Preferred};
use tokio::io::AsyncRead;

pub use cmd::{quote, RemoteCmd};

/// Where to connect and how to prove who we are; every field comes from the trial record.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key file (the trial's ed25519 key). `None` uses the keys of the running ssh-agent.
    pub identity: Option<PathBuf>,
    /// The host key the server must present.
    pub host_key: PublicKey,
}

impl Target {
    pub fn display(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limit for TCP connect + SSH handshake + authentication.
    pub connect_timeout: Duration,
    /// Keepalive every this often when the server is silent; the connection is dropped after
    /// `keepalive_max` unanswered ones.
    pub keepalive: Duration,
    pub keepalive_max: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(20),
            keepalive: Duration::from_secs(15),
            keepalive_max: 4,
        }
    }
}

/// The server presented a different host key than the pinned one.
#[derive(Debug)]
pub struct HostKeyMismatch {
    pub host: String,
    pub expected: String,
    pub presented: String,
}

impl fmt::Display for HostKeyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "host key mismatch for {}: expected {} (pinned at create), server presented {}; \
             refusing to continue (nothing was sent). If the host was rebuilt, register it again \
             with the new key.",
            self.host, self.expected, self.presented
        )
    }
}

impl std::error::Error for HostKeyMismatch {}

struct PinnedHostKey {
    expected: PublicKey,
    presented: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for PinnedHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), cert.comment())
            }
        };
        let ok = hostkey::same_key(&key, &self.expected);
        *self.presented.lock().unwrap() = Some(key);
        Ok(ok)
    }
}

/// Captured result of one remote command.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub status: Option<u32>,
    pub signal: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn describe_status(&self) -> String {
        match (&self.status, &self.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (None, Some(sig)) => format!("signal {sig}"),
            (None, None) => "no exit status (connection lost?)".to_string(),
        }
    }
}

/// Where a remote command's output goes while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Keep it; show it only in the error on failure.
    Capture,
    /// Also copy stdout to our stderr and stderr to our stderr, as it arrives (progress output).
    Progress,
    /// Copy stdout to our stdout and stderr to our stderr (logs, `ssh -- cmd`).
    Passthrough,
}

/// A remote command failed; carries the captured output so the caller can show it.
#[derive(Debug)]
pub struct RemoteFailure {
    pub host: String,
    pub command: String,
    pub output: ExecOutput,
}

impl fmt::Display for RemoteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "remote command on {} failed with {}: {}",
            self.host,
            self.output.describe_status(),
            self.command
        )?;
        let err = self.output.stderr_str();
        let tail = tail_lines(&err, 30);
        if !tail.trim().is_empty() {
            write!(f, "\n--- stderr (last lines) ---\n{}", tail.trim_end())?;
        } else {
            let out = self.output.stdout_str();
            let tail = tail_lines(&out, 15);
            if !tail.trim().is_empty() {
                write!(f, "\n--- stdout (last lines) ---\n{}", tail.trim_end())?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RemoteFailure {}

pub fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// One authenticated connection to a trial host.
pub struct Session {
    handle: Handle<PinnedHostKey>,
    host: String,
}

impl Session {
    pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<Session> {
        let started = std::time::Instant::now();
        let presented = Arc::new(Mutex::new(None));
        let fut = Self::connect_inner(target, opts, presented.clone());
        let res = tokio::time::timeout(opts.connect_timeout, fut).await;
        match res {
            Err(_) => bail!(
                "connecting to {} timed out after {}s",
                target.display(),
                opts.connect_timeout.as_secs()
            ),
            Ok(Ok(s)) => {
                tracing::debug!("{:.0} ms: connected to {}", started.elapsed().as_secs_f64() * 1e3, target.display());
                Ok(s)
            }
            Ok(Err(e)) => {
                let seen = presented.lock().unwrap().clone();
                if let Some(seen) = seen {
                    if !hostkey::same_key(&seen, &target.host_key) {
                        return Err(anyhow::Error::new(HostKeyMismatch {
                            host: format!("{}:{}", target.host, target.port),
                            expected: hostkey::fingerprint(&target.host_key),
                            presented: hostkey::fingerprint(&seen),
                        }));
                    }
                }
                Err(e)
            }
        }
    }

    async fn connect_inner(
        target: &Target,
        opts: &ConnectOptions,
        presented: Arc<Mutex<Option<PublicKey>>>,
    ) -> Result<Session> {
        let config = client::Config {
            keepalive_interval: Some(opts.keepalive),
            keepalive_max: opts.keepalive_max,
            nodelay: true,
            // A large window keeps many SFTP writes in flight on links with latency.
            window_size: 16 * 1024 * 1024,
            maximum_packet_size: 65535,
            channel_buffer_size: 256,
            preferred: Preferred {
                // AES-GCM runs on the CPU's AES instructions at both ends; 128-bit keys take
                // 10 rounds instead of 14, which a multi-GB upload on a fast link notices.
                cipher: std::borrow::Cow::Borrowed(&[
                    russh::cipher::AES_128_GCM,
                    russh::cipher::AES_256_GCM,
                    russh::cipher::CHACHA20_POLY1305,
                    russh::cipher::AES_256_CTR,
                ]),
                ..Preferred::default()
            },
            ..Default::default()
        };
        let addr = (target.host.as_str(), target.port);
        let socket = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {}", target.display()))?;
        socket.set_nodelay(true).ok();
        let handler = PinnedHostKey {
            expected: target.host_key.clone(),
            presented,
        };
        let mut handle = client::connect_stream(Arc::new(config), quickack::QuickAck(socket), handler)
            .await
            .with_context(|| format!("SSH handshake with {}", target.display()))?;
        authenticate(&mut handle, target).await?;
        Ok(Session {
            handle,
            host: target.display(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs a command, captures its output, and does not judge the exit status.
    pub async fn exec(&self, cmd: &RemoteCmd) -> Result<ExecOutput> {
        self.exec_with(cmd, None::<tokio::io::Empty>, Echo::Capture).await
    }

    /// Runs a command and fails (with its exit status and stderr) unless it exits 0.
    pub async fn run(&self, cmd: &RemoteCmd) -> Result<ExecOutput> {
        self.run_with(cmd, None::<tokio::io::Empty>, Echo::Capture).await
    }

    pub async fn run_with<R: AsyncRead + Unpin + Send>(
        &self,
        cmd: &RemoteCmd,
        stdin: Option<R>,
        echo: Echo,
    ) -> Result<ExecOutput> {
        let out = self.exec_with(cmd, stdin, echo).await?;
        self.judged(cmd, out)
    }

    /// Runs a command on its own channel, optionally feeding `stdin` to it.
    pub async fn exec_with<R: AsyncRead + Unpin + Send>(
        &self,
        cmd: &RemoteCmd,
        stdin: Option<R>,
        echo: Echo,
    ) -> Result<ExecOutput> {
        self.exec_capped(cmd, stdin, echo, CAPTURE_CAP).await
    }

    /// Like `run_with`, but keeps up to `cap` bytes of output: for commands whose output is data
    /// (a file's block hashes), not a log whose tail is what matters.
    pub async fn run_capped<R: AsyncRead + Unpin + Send>(
        &self,
        cmd: &RemoteCmd,
        stdin: Option<R>,
        cap: usize,
    ) -> Result<ExecOutput> {
        let out = self.exec_capped(cmd, stdin, Echo::Capture, cap).await?;
        self.judged(cmd, out)
    }

    /// The output of a command that exited 0, else the failure with its status and stderr.
    fn judged(&self, cmd: &RemoteCmd, out: ExecOutput) -> Result<ExecOutput> {
        if !out.success() {
            return Err(anyhow::Error::new(RemoteFailure {
                host: self.host.clone(),
                command: cmd.to_command_line(),
                output: out,
            }));
        }
        Ok(out)
    }

    async fn exec_capped<R: AsyncRead + Unpin + Send>(
        &self,
        cmd: &RemoteCmd,
        stdin: Option<R>,
        echo: Echo,
        cap: usize,
    ) -> Result<ExecOutput> {
        let line = cmd.to_command_line();
        let started = std::time::Instant::now();
        let channel = self
            .handle
            .channel_open_session()
            .await
            .with_context(|| format!("opening a channel on {}", self.host))?;
        channel
            .exec(true, line.as_bytes())
            .await
            .with_context(|| format!("starting `{line}` on {}", self.host))?;
        let (mut rd, wr) = channel.split();

        let feed = async {
            if let Some(mut input) = stdin {
                let r = wr.data(&mut input).await;
                let _ = wr.eof().await;
                r.map_err(|e| anyhow!("sending input to `{line}`: {e}"))
            } else {
                let _ = wr.eof().await;
                Ok(())
            }
        };

        let collect = async {
            let mut out = ExecOutput::default();
            use std::io::Write as _;
            let mut stdout = std::io::stdout();
            let mut stderr = std::io::stderr();
            while let Some(msg) = rd.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        match echo {
                            Echo::Capture => {}
                            Echo::Progress => {
                                let _ = stderr.write_all(&data);
                                let _ = stderr.flush();
                            }
                            Echo::Passthrough => {
                                let _ = stdout.write_all(&data);
                                let _ = stdout.flush();
                            }
                        }
                        push_capped(&mut out.stdout, &data, cap);
                    }
                    ChannelMsg::ExtendedData { data, ext } => {
                        if ext == 1 && echo != Echo::Capture {
                            let _ = stderr.write_all(&data);
                            let _ = stderr.flush();
                        }
                        push_capped(&mut out.stderr, &data, CAPTURE_CAP);
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        out.signal = Some(format!("{signal_name:?}"))
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            out
        };

        // The command may finish before its input ends (or keep input open as a lifeline that
        // ends with the caller): once the channel closes, stop feeding.
        tokio::pin!(feed);
        tokio::pin!(collect);
        let (out, fed) = tokio::select! {
            out = &mut collect => (out, None),
            fed = &mut feed => (collect.await, Some(fed)),
        };
        if out.status.is_none() && out.signal.is_none() {
            if let Some(fed) = fed {
                fed?;
            }
        }
        tracing::debug!("{:.0} ms: `{}`", started.elapsed().as_secs_f64() * 1e3, line.chars().take(80).collect::<String>());
        Ok(out)
    }

    /// Opens the SFTP subsystem on a new channel.
    pub async fn sftp(&self) -> Result<russh_sftp::client::RawSftpSession> {
        let channel = self.handle.channel_open_session().await?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .with_context(|| format!("starting the sftp subsystem on {}", self.host))?;
        let cfg = russh_sftp::client::Config {
            request_timeout_secs: 120,
            ..Default::default()
        };
        let sftp = russh_sftp::client::RawSftpSession::new_with_config(channel.into_stream(), cfg);
        sftp.init().await.context("SFTP version exchange")?;
        Ok(sftp)
    }

    pub async fn close(self) {
        let started = std::time::Instant::now();
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        tracing::debug!("{:.0} ms: disconnect", started.elapsed().as_secs_f64() * 1e3);
    }
}

/// Captured output is capped so a chatty command cannot exhaust memory; the tail is what matters.
const CAPTURE_CAP: usize = 4 * 1024 * 1024;

fn push_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) {
    buf.extend_from_slice(data);
    if buf.len() > cap {
        let cut = buf.len() - cap / 2;
        buf.drain(..cut);
    }
}

async fn authenticate(handle: &mut Handle<PinnedHostKey>, target: &Target) -> Result<()> {
    if let Some(path) = &target.identity {
        let key = russh::keys::load_secret_key(path, None)
            .with_context(|| format!("loading the SSH key {}", path.display()))?;
        let hash = if key.algorithm().is_rsa() {
            handle.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        let res = handle
            .authenticate_publickey(
                target.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await?;
        if !res.success() {
            bail!(
                "{} refused the key {} for user {}",
                target.display(),
                path.display(),
                target.user
            );
        }
        return Ok(());
    }
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .context("no --identity key and no usable ssh-agent (SSH_AUTH_SOCK)")?;
    let ids = agent.request_identities().await?;
    for id in ids {
        let key = match id {
            russh::keys::agent::AgentIdentity::PublicKey { key, .. } => key,
            _ => continue,
        };
        let hash = if key.algorithm().is_rsa() {
            handle.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        let res = handle
            .authenticate_publickey_with(target.user.clone(), key, hash, &mut agent)
            .await;
        if let Ok(r) = res {
            if r.success() {
                return Ok(());
            }
        }
    }
    bail!(
        "{} accepted none of the ssh-agent's keys for user {}",
        target.display(),
        target.user
    )
}
