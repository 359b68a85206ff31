//! The dataset upload against a real OpenSSH sshd, the real binary and the real host helper:
//! zstd on the wire, a block delta after scattered page changes, a cut mid-delta, a host
//! without zstd or python3, a host copy that rotted under its block hashes, and a redeploy
//! with nothing changed, whose bytes are counted by a TCP relay in front of sshd.

mod common;
mod relay;
mod sshd_fixture;

use std::path::{Path, PathBuf};

use common::{Cli, Run};
use relay::Relay;
use serde_json::Value;
use sshd_fixture::{sha256_file, Sshd};

const TRIAL: &str = "speed";
const UPLOAD: &str = "check-data,upload-data";

struct Host {
    sshd: Sshd,
    cli: Cli,
    remote: PathBuf,
    relay: Option<Relay>,
}

impl Host {
    fn start(sshd: Sshd, through_relay: bool) -> Host {
        let relay = through_relay.then(|| Relay::start(sshd.port));
        let cli = Cli::new(None);
        let remote = sshd.dir.path().join("remote-home/munero");
        let port = relay.as_ref().map_or(sshd.port, |r| r.port).to_string();
        cli.run(&[
            "create", TRIAL, "--provider", "ssh", "--host", "127.0.0.1", "--port", &port, "--user", &sshd.user,
            "--identity", sshd.client_key.to_str().unwrap(), "--host-key", sshd.host_pub.to_str().unwrap(),
            "--remote-dir", remote.to_str().unwrap(),
        ])
        .ok();
        Host { sshd, cli, remote, relay }
    }

    fn deploy(&self, data: &Path, only: &str) -> Run {
        self.cli.run(&["--output", "json", "deploy", TRIAL, "--data", data.to_str().unwrap(), "--only", only])
    }

    fn upload(&self, data: &Path) -> (Value, Run) {
        let r = self.deploy(data, UPLOAD).ok();
        (r.json()["results"]["upload"].clone(), r)
    }

    fn data(&self) -> PathBuf {
        self.remote.join("data/client.sqlite")
    }
}

/// A realistic sales database from the bundled generator (compresses about 3x, like client data).
fn sales_db(path: &Path, rows: u32) {
    let out = std::process::Command::new("python3")
        .arg(common::repo_root().join("backend/scripts/make_sample_db.py"))
        .args(["--rows", &rows.to_string(), "--seed", "7", "--out"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Scattered updates: one order in `every` gets a new amount, so about 40/`every` of the table's
/// pages change, spread over the whole file.
fn touch_orders(path: &Path, every: u32, by: f64) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute("UPDATE orders SET amount = amount + ?1 WHERE rowid % ?2 = 0", rusqlite::params![by, every]).unwrap();
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn compressed_upload_equals_the_source_and_sends_a_fraction_of_it() {
    let h = Host::start(Sshd::start(), false);
    let db = h.sshd.dir.path().join("sales.sqlite");
    sales_db(&db, 60_000);
    let (up, run) = h.upload(&db);
    assert_eq!(up["mode"], "compressed", "{up}");
    assert_eq!(sha256_file(&h.data()), sha256_file(&db));
    assert_eq!(up["sha256"].as_str().unwrap(), sha256_file(&db));
    let wire = up["bytes_on_wire"].as_u64().unwrap();
    assert!(wire < size(&db) / 2, "{wire} bytes on the wire for {} bytes", size(&db));
    assert_eq!(up["size"].as_u64().unwrap(), size(&db));
    assert!(up["seconds"].as_f64().is_some());
    assert!(run.stderr.contains("(zstd;"), "{}", run.stderr);
}

#[test]
fn delta_after_scattered_page_changes_rebuilds_the_identical_file() {
    let h = Host::start(Sshd::start(), false);
    let db = h.sshd.dir.path().join("sales.sqlite");
    sales_db(&db, 60_000);
    h.upload(&db);
    touch_orders(&db, 4001, 1.5);
    let (up, run) = h.upload(&db);
    assert_eq!(up["mode"], "delta", "{up}");
    assert_eq!(sha256_file(&h.data()), sha256_file(&db));
    let wire = up["bytes_on_wire"].as_u64().unwrap();
    assert!(wire * 20 < size(&db), "a 1% change sent {wire} of {} bytes", size(&db));
    assert!(run.stderr.contains("delta: "), "{}", run.stderr);
    assert!(!h.remote.join("data/client.sqlite.part").exists());

    let (again, _) = h.upload(&db);
    assert_eq!(again["mode"], "skipped");
    assert_eq!(again["bytes_on_wire"], 0);
}

/// A database of incompressible blobs, so the delta stream is long enough to be cut.
fn blob_db(path: &Path, mib: usize) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA journal_mode=OFF; CREATE TABLE orders(id INTEGER PRIMARY KEY, amount REAL); CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB); INSERT INTO orders(amount) VALUES (1), (2);").unwrap();
    for _ in 0..mib {
        c.execute("INSERT INTO blobs(b) VALUES (randomblob(1048576))", []).unwrap();
    }
}

#[test]
fn a_cut_mid_delta_keeps_the_old_copy_and_a_rerun_finishes_it() {
    let h = Host::start(Sshd::start(), true);
    let relay = h.relay.as_ref().unwrap();
    let db = h.sshd.dir.path().join("blobs.sqlite");
    blob_db(&db, 24);
    h.upload(&db);
    let old = sha256_file(&h.data());
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute("UPDATE blobs SET b = randomblob(1048576) WHERE id % 3 = 0", []).unwrap();
    drop(c);

    // About 8 MiB of changed blocks; the link drops after 3 MiB of them.
    relay.cut_after(3 << 20);
    let cut = h.deploy(&db, UPLOAD);
    assert_ne!(cut.code, 0, "the cut must fail the deploy");
    assert!(relay.was_cut());
    assert_eq!(sha256_file(&h.data()), old, "the host keeps its old copy until a rebuilt one verifies");

    let (up, _) = h.upload(&db);
    assert_eq!(up["mode"], "delta", "{up}");
    assert_eq!(sha256_file(&h.data()), sha256_file(&db));
    assert!(!h.remote.join("data/client.sqlite.part").exists());
}

#[test]
fn a_host_without_zstd_or_python3_gets_the_plain_upload_and_the_reason() {
    for missing in ["zstd", "python3"] {
        let h = Host::start(Sshd::start_without(&[missing]), false);
        let db = h.sshd.dir.path().join("sales.sqlite");
        sales_db(&db, 20_000);
        let (up, run) = h.upload(&db);
        assert_eq!(up["mode"], "full", "{up}");
        assert!(up["note"].as_str().unwrap().contains(&format!("the host has no {missing} on its PATH: plain upload")), "{up}");
        assert!(run.stderr.contains(&format!("note: the host has no {missing}")), "{}", run.stderr);
        assert_eq!(sha256_file(&h.data()), sha256_file(&db));
        // A changed file goes whole again, and verified.
        touch_orders(&db, 500, 2.0);
        let (up, _) = h.upload(&db);
        assert_eq!(up["mode"], "full");
        assert_eq!(sha256_file(&h.data()), sha256_file(&db));
    }
}

#[test]
fn a_host_copy_that_rotted_under_its_block_hashes_is_caught_and_sent_whole() {
    let h = Host::start(Sshd::start(), false);
    let db = h.sshd.dir.path().join("sales.sqlite");
    sales_db(&db, 60_000);
    h.upload(&db);
    touch_orders(&db, 3001, 1.0);
    let (up, _) = h.upload(&db);
    assert_eq!(up["mode"], "delta");
    let kept = h.cli.state_dir().join("upload-blocks").join(format!("{}.4096.crc-adler", sha256_file(&db)));
    assert!(kept.exists(), "the block hashes of what was sent are kept here for the next delta");

    // One block of the host's copy changes on disk; its size and mtime stay, so the cached
    // block hashes still claim the old content.
    let on_host = h.data();
    let mtime = std::fs::metadata(&on_host).unwrap().modified().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&on_host).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0xAB; 100], 40 * 4096 + 7).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);

    touch_orders(&db, 2999, 1.0);
    let (up, run) = h.upload(&db);
    assert_eq!(up["repaired"], true, "{up}");
    assert_eq!(up["mode"], "compressed", "{up}");
    assert!(up["note"].as_str().unwrap().contains("sent the whole file instead"), "{up}");
    assert!(run.stderr.contains("differs from its recorded block hashes"), "{}", run.stderr);
    assert_eq!(sha256_file(&on_host), sha256_file(&db));

    // Without the hashes here (another operator's machine), the host hashes its copy and the
    // delta still goes; the host keeps those hashes beside the rebuilt copy.
    std::fs::remove_dir_all(h.cli.state_dir().join("upload-blocks")).unwrap();
    touch_orders(&db, 1501, 1.0);
    let (up, run) = h.upload(&db);
    assert_eq!(up["mode"], "delta", "{up}");
    assert!(run.stderr.contains("of block hashes from the host"), "{}", run.stderr);
    assert_eq!(sha256_file(&on_host), sha256_file(&db));
    assert!(h.remote.join("data/client.sqlite.blocks").exists());
}

#[test]
fn a_redeploy_with_nothing_changed_sends_no_data_and_says_what_it_skipped() {
    let h = Host::start(Sshd::start(), true);
    let relay = h.relay.as_ref().unwrap();
    let db = h.sshd.dir.path().join("sales.sqlite");
    sales_db(&db, 60_000);
    let steps = "check-data,check-env,wait-cloud-init,upload-data,upload-bundle,upload-env";
    h.deploy(&db, steps).ok();
    let first = relay.up.load(std::sync::atomic::Ordering::SeqCst);
    relay.reset();

    let again = h.deploy(&db, steps).ok();
    let sent = relay.up.load(std::sync::atomic::Ordering::SeqCst);
    let j = again.json();
    let up = &j["results"]["upload"];
    assert_eq!(up["mode"], "skipped", "{up}");
    assert_eq!(up["bytes_on_wire"], 0);
    // The users file Caddy imports goes with the stack files, so it is skipped with them.
    let all = ["upload-data", "upload-bundle", "upload-env", "upload-users"];
    assert_eq!(j["results"]["skipped"], serde_json::json!(all), "{j}");
    assert!(again.stderr.contains(&format!("Skipped, unchanged since the last deploy: {}", all.join(", "))), "{}", again.stderr);
    // What is left is the SSH handshake and a few short commands.
    assert!(sent < 48 * 1024, "{sent} bytes went to the host (the first deploy sent {first})");
    assert!(first > size(&db) / 4, "the relay saw the first upload ({first} bytes)");

    // --force sends everything again, the whole file included.
    let forced = h.cli.run(&["--output", "json", "deploy", TRIAL, "--data", db.to_str().unwrap(), "--only", steps, "--force"]).ok();
    let j = forced.json();
    assert_eq!(j["results"]["upload"]["mode"], "compressed", "{j}");
    assert_eq!(j["results"]["skipped"], serde_json::json!([]));
}
