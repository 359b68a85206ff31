//! The users file `auth` writes, read by a real Caddy through the stack's own Caddyfile import:
//! add, rotate and revoke take effect with `caddy reload`, the same Caddy process keeps serving
//! (no restart), other users are unaffected, and revoking everyone locks the site.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use munero_infra::auth::UserSet;

/// MUNERO_CADDY_BIN (scripts/setup/caddy.sh), else `caddy` on PATH.
fn caddy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MUNERO_CADDY_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let on_path = std::env::var("PATH").unwrap_or_default().split(':').map(|d| Path::new(d).join("caddy")).find(|p| p.is_file());
    on_path.unwrap_or_else(|| panic!("no Caddy: run scripts/setup/caddy.sh and set MUNERO_CADDY_BIN to the path it prints"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Caddy {
    child: Child,
    dir: tempfile::TempDir,
    admin: u16,
    port: u16,
}

impl Caddy {
    /// A site on loopback whose `basic_auth` block imports `auth/users.caddy` exactly as
    /// deploy/Caddyfile does.
    fn start(users: &str) -> Caddy {
        let dir = tempfile::tempdir().unwrap();
        let (admin, port) = (free_port(), free_port());
        std::fs::create_dir(dir.path().join("auth")).unwrap();
        std::fs::write(dir.path().join("auth/users.caddy"), users).unwrap();
        std::fs::write(
            dir.path().join("Caddyfile"),
            format!("{{\n\tadmin localhost:{admin}\n}}\nhttp://127.0.0.1:{port} {{\n\thandle {{\n\t\tbasic_auth {{\n\t\t\timport auth/users.caddy\n\t\t}}\n\t\trespond \"ok\"\n\t}}\n}}\n"),
        )
        .unwrap();
        let child = Command::new(caddy_bin())
            .args(["run", "--config", "Caddyfile", "--adapter", "caddyfile"])
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting caddy");
        let c = Caddy { child, dir, admin, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        // bcrypt checks are slow on a loaded machine: the generous timeout above is for them.
        while c.status(None) != Some(401) {
            assert!(Instant::now() < deadline, "caddy did not answer on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn status(&self, login: Option<(&str, &str)>) -> Option<u16> {
        let mut r = reqwest::blocking::Client::new().get(format!("http://127.0.0.1:{}/", self.port)).timeout(Duration::from_secs(60));
        if let Some((u, p)) = login {
            r = r.basic_auth(u, Some(p));
        }
        r.send().ok().map(|r| r.status().as_u16())
    }

    /// What `auth` does on the host: replace the file, then `caddy reload`.
    fn apply(&self, set: &UserSet) {
        let f = self.dir.path().join("auth/users.caddy");
        std::fs::write(f.with_extension("tmp"), set.caddy_file().unwrap()).unwrap();
        std::fs::rename(f.with_extension("tmp"), &f).unwrap();
        let st = Command::new(caddy_bin())
            .args(["reload", "--config", "Caddyfile", "--adapter", "caddyfile", "--address", &format!("localhost:{}", self.admin)])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "caddy reload failed");
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn add_rotate_revoke_take_effect_on_reload_without_restarting_caddy() {
    let mut set = UserSet::default();
    let ann = set.add("ann", "t0").unwrap().password.clone();
    let caddy = Caddy::start(&set.caddy_file().unwrap());
    let pid = caddy.child.id();
    assert_eq!(caddy.status(Some(("ann", &ann))), Some(200));

    let bob = set.add("bob", "t1").unwrap().password.clone();
    assert_eq!(caddy.status(Some(("bob", &bob))), Some(401), "not applied before the reload");
    caddy.apply(&set);
    assert_eq!(caddy.status(Some(("bob", &bob))), Some(200));
    assert_eq!(caddy.status(Some(("ann", &ann))), Some(200));

    let bob2 = set.rotate("bob", "t2").unwrap().password.clone();
    caddy.apply(&set);
    assert_eq!(caddy.status(Some(("bob", &bob))), Some(401), "the old password is refused");
    assert_eq!(caddy.status(Some(("bob", &bob2))), Some(200));
    assert_eq!(caddy.status(Some(("ann", &ann))), Some(200), "other users are unaffected");

    set.revoke(Some("ann"), false).unwrap();
    caddy.apply(&set);
    assert_eq!(caddy.status(Some(("ann", &ann))), Some(401));
    assert_eq!(caddy.status(Some(("bob", &bob2))), Some(200));

    set.revoke(None, true).unwrap();
    caddy.apply(&set);
    assert_eq!(caddy.status(Some(("bob", &bob2))), Some(401), "locked");
    assert_eq!(caddy.status(None), Some(401));

    // The same process served every step: changes were reloads, not restarts.
    assert_eq!(caddy.child.id(), pid);
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok(), "caddy exited");
}

#[test]
fn the_stacks_caddyfile_takes_its_accounts_from_the_imported_users_file() {
    let mut set = UserSet::default();
    set.add("ann", "t0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = common::repo_root();
    std::fs::copy(root.join("deploy/Caddyfile"), dir.path().join("Caddyfile")).unwrap();
    std::fs::create_dir(dir.path().join("auth")).unwrap();
    std::fs::write(dir.path().join("auth/users.caddy"), set.caddy_file().unwrap()).unwrap();
    let out = Command::new(caddy_bin())
        .args(["adapt", "--config", "Caddyfile", "--adapter", "caddyfile"])
        .current_dir(dir.path())
        .env("MUNERO_DOMAIN", "trial.example.net")
        .env("MUNERO_TLS", "internal")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains(&set.get("ann").unwrap().bcrypt_hash.to_string()) && json.contains("\"username\":\"ann\""), "{json}");

    // As shipped, the file holds the single account of the env, as before several users existed.
    std::fs::copy(root.join("deploy/auth/users.caddy"), dir.path().join("auth/users.caddy")).unwrap();
    let out = Command::new(caddy_bin())
        .args(["adapt", "--config", "Caddyfile", "--adapter", "caddyfile"])
        .current_dir(dir.path())
        .env("MUNERO_DOMAIN", "trial.example.net")
        .env("MUNERO_TLS", "internal")
        .env("BASIC_AUTH_USER", "acme")
        .env("BASIC_AUTH_HASH", "$2a$14$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQ")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"username\":\"acme\""));
}
