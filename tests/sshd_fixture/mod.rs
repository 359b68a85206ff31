//! A real OpenSSH sshd on 127.0.0.1 with its own host key, client key and authorized_keys in a
//! temp dir. `scripts/setup/sshd.sh` installs it. Each fixture is one `sshd -D` process; dropping
//! the fixture kills it.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use munero_infra::ssh::{hostkey, Target};

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    pub host_pub: PathBuf,
    pub client_key: PathBuf,
    pub client_pub: PathBuf,
    child: Child,
    path_dir: Option<tempfile::TempDir>,
}

pub fn keygen(path: &Path, comment: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (run scripts/setup/sshd.sh)");
    assert!(st.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with_host_key(None)
    }

    /// With a given host private key (a trial's injected key, as cloud-init would install it).
    pub fn start_with_host_key(given: Option<&Path>) -> Sshd {
        Sshd::start_with(given, None)
    }

    /// Commands on this "host" see a PATH that lacks `hidden` (a host without zstd, say).
    pub fn start_without(hidden: &[&str]) -> Sshd {
        let bin = tempfile::tempdir().unwrap();
        for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let hide = hidden.iter().any(|h| name == *h || name.starts_with(&format!("{h}.")) || name.starts_with(&format!("{h}mt")));
                if !hide && !bin.path().join(&name).exists() {
                    std::os::unix::fs::symlink(e.path(), bin.path().join(&name)).unwrap();
                }
            }
        }
        let mut s = Sshd::start_with(None, Some(bin.path()));
        s.path_dir = Some(bin);
        s
    }

    fn start_with(given: Option<&Path>, path: Option<&Path>) -> Sshd {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "/usr/sbin/sshd missing: run scripts/setup/sshd.sh"
        );
        std::fs::create_dir_all("/run/sshd").ok();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let host_key = d.join("host_ed25519");
        match given {
            Some(k) => {
                std::fs::copy(k, &host_key).unwrap();
                std::fs::set_permissions(&host_key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
                std::fs::copy(k.with_extension("pub"), d.join("host_ed25519.pub")).unwrap();
            }
            None => keygen(&host_key, "fixture-host"),
        }
        let client_key = d.join("client_ed25519");
        keygen(&client_key, "fixture-client");
        let client_pub = d.join("client_ed25519.pub");
        std::fs::copy(&client_pub, d.join("authorized_keys")).unwrap();
        let sftp = ["/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sftp-server missing: run scripts/setup/sshd.sh");
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 HostKey {hk}\n\
                 AuthorizedKeysFile {ak}\n\
                 PidFile {pid}\n\
                 StrictModes no\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 MaxStartups 64\n\
                 MaxSessions 64\n\
                 LogLevel FATAL\n\
                 Subsystem sftp {sftp}\n{setenv}",
                // A login shell may put a version manager's shims ahead of PATH (pyenv here):
                // pinned to the system's interpreter, a shim finds none outside PATH either.
                setenv = path.map(|p| format!("SetEnv PATH={} PYENV_VERSION=system\n", p.display())).unwrap_or_default(),
                hk = host_key.display(),
                ak = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting sshd");
        let s = Sshd {
            port,
            user: current_user(),
            host_pub: d.join("host_ed25519.pub"),
            client_key,
            client_pub,
            child,
            dir,
            path_dir: None,
        };
        s.wait_banner();
        s
    }

    fn wait_banner(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) {
                c.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut buf = [0u8; 4];
                if c.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "sshd did not answer on port {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn target(&self) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: self.port,
            user: self.user.clone(),
            identity: Some(self.client_key.clone()),
            host_key: hostkey::load_pinned(&self.host_pub).unwrap(),
        }
    }

    /// A scratch directory "on the remote host" (same machine, absolute path).
    pub fn remote_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("remote").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Cuts every open connection: kills the per-connection sshd processes (children of the
    /// listener), as a dropped link would.
    pub fn kill_connections(&self) -> usize {
        let me = self.child.id();
        let mut n = 0;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // ppid is the 2nd field after the parenthesised command name.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
            let ppid: u32 = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            if ppid == me {
                unsafe { libc_kill(pid as i32, 9) };
                n += 1;
            }
        }
        n
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_connections();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of `size` bytes with pseudo-random content (not compressible, not all zeros).
pub fn random_file(path: &Path, size: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ size;
    for chunk in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut left = size;
    let mut i: u64 = 0;
    while left > 0 {
        // Stamp each MiB with its index so no two blocks are equal.
        block[..8].copy_from_slice(&i.to_le_bytes());
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
        i += 1;
    }
    f.flush().unwrap();
}

pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

impl Sshd {
    /// Also accept this public key (a trial's login key) for the fixture's user.
    pub fn authorize(&self, public_key_line: &str) {
        let ak = self.dir.path().join("authorized_keys");
        let mut text = std::fs::read_to_string(&ak).unwrap();
        text.push_str(public_key_line.trim());
        text.push('\n');
        std::fs::write(ak, text).unwrap();
    }
}

/// The size of a file once it stops growing: after a cut the host side still writes what it
/// had received when its connection went.
pub fn settled_size(path: &Path) -> u64 {
    let mut last = u64::MAX;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = std::fs::metadata(path).map(|m| m.len()).expect("the .part survives the cut");
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(300));
    }
}
