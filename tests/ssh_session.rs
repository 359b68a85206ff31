//! SSH layer against a real OpenSSH sshd on 127.0.0.1: host-key pinning, exec exit codes and
//! stderr, SFTP upload (1 GiB verified by sha256, resume after a cut, skip when unchanged).

mod sshd_fixture;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use munero_infra::ssh::upload::{upload_file, Mode, Probe, UploadOptions, PROBE_MIN_SIZE};
use munero_infra::ssh::{hostkey, ConnectOptions, HostKeyMismatch, RemoteCmd, RemoteFailure, Session};
use sshd_fixture::{keygen, random_file, sha256_file, Sshd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_host_key_is_refused_with_both_fingerprints_and_nothing_is_uploaded() {
    let sshd = Sshd::start();
    let other = sshd.dir.path().join("other_host_key");
    keygen(&other, "impostor");
    let mut target = sshd.target();
    let expected = hostkey::load_pinned(&other.with_extension("pub")).unwrap();
    target.host_key = expected.clone();

    let local = sshd.dir.path().join("data.bin");
    std::fs::write(&local, b"client data").unwrap();
    let remote = sshd.remote_dir("pin").join("data.bin");

    let err = match Session::connect(&target, &ConnectOptions::default()).await {
        Ok(_) => panic!("connected despite a host key that differs from the pinned one"),
        Err(e) => e,
    };
    let mismatch = err.downcast_ref::<HostKeyMismatch>().expect("a HostKeyMismatch error");
    let real = hostkey::load_pinned(&sshd.host_pub).unwrap();
    assert_eq!(mismatch.expected, hostkey::fingerprint(&expected));
    assert_eq!(mismatch.presented, hostkey::fingerprint(&real));
    let msg = err.to_string();
    assert!(msg.contains(&hostkey::fingerprint(&expected)) && msg.contains(&hostkey::fingerprint(&real)), "{msg}");

    assert!(!remote.exists());
    let parent = remote.parent().unwrap();
    assert_eq!(std::fs::read_dir(parent).unwrap().count(), 0, "nothing may reach the host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_reports_exit_status_stdout_and_stderr() {
    let sshd = Sshd::start();
    let s = Session::connect(&sshd.target(), &ConnectOptions::default()).await.unwrap();

    let ok = s.exec(&RemoteCmd::argv(["echo", "hello world"])).await.unwrap();
    assert_eq!(ok.status, Some(0));
    assert_eq!(ok.stdout_str(), "hello world\n");

    let bad = s
        .exec(&RemoteCmd::shell("echo out; echo 'disk on fire' >&2; exit 3"))
        .await
        .unwrap();
    assert_eq!(bad.status, Some(3));
    assert_eq!(bad.stdout_str(), "out\n");
    assert_eq!(bad.stderr_str(), "disk on fire\n");

    // run() turns a non-zero exit into an error that shows the status and stderr.
    let err = s.run(&RemoteCmd::shell("echo 'no such volume' >&2; exit 42")).await.unwrap_err();
    let f = err.downcast_ref::<RemoteFailure>().expect("RemoteFailure");
    assert_eq!(f.output.status, Some(42));
    let msg = err.to_string();
    assert!(msg.contains("exit status 42") && msg.contains("no such volume"), "{msg}");

    // Several channels over the one connection, and stdin fed to a command.
    let input = std::io::Cursor::new(b"abc".to_vec());
    let out = s
        .run_with(&RemoteCmd::argv(["wc", "-c"]), Some(input), munero_infra::ssh::Echo::Capture)
        .await
        .unwrap();
    assert_eq!(out.stdout_str().trim(), "3");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_1gib_resumes_after_a_cut_sends_only_the_rest_and_verifies_sha256() {
    const SIZE: u64 = 1 << 30;
    let sshd = Arc::new(Sshd::start());
    let local = sshd.dir.path().join("big.sqlite");
    random_file(&local, SIZE);
    let dest = sshd.remote_dir("big").join("client.sqlite");
    let dest_s = dest.to_string_lossy().to_string();
    let cache = sshd.dir.path().join("state/upload-hashes.json");

    // First attempt: cut every connection once a third of the file is on the host.
    let cut = Arc::new(AtomicBool::new(false));
    let opts = UploadOptions {
        hash_cache: Some(cache.clone()),
        on_progress: Some({
            let cut = cut.clone();
            let sshd = sshd.clone();
            Arc::new(move |done, _total| {
                if done > SIZE / 3 && !cut.swap(true, Ordering::SeqCst) {
                    sshd.kill_connections();
                }
            })
        }),
        ..Default::default()
    };
    let s = Session::connect(&sshd.target(), &ConnectOptions::default()).await.unwrap();
    let first = upload_file(&s, &local, &dest_s, &opts).await;
    assert!(first.is_err(), "the cut must fail the first upload");
    assert!(cut.load(Ordering::SeqCst));
    assert!(!dest.exists(), "no final file before verification");
    let part = std::path::PathBuf::from(format!("{dest_s}.part"));
    let kept = sshd_fixture::settled_size(&part);
    assert!(kept > 0 && kept < SIZE, "part has {kept} bytes");

    // Second attempt on a new connection: continues at the part's size.
    let s = Session::connect(&sshd.target(), &ConnectOptions::default()).await.unwrap();
    let opts = UploadOptions { hash_cache: Some(cache.clone()), ..Default::default() };
    let second = upload_file(&s, &local, &dest_s, &opts).await.unwrap();
    assert!(!second.skipped);
    assert_eq!(second.resumed_from, kept);
    assert_eq!(second.bytes_sent, SIZE - kept, "only the rest is sent");
    assert!(second.hashed_while_uploading, "the host hashed the part while it was written");
    assert_eq!(second.size, SIZE);
    assert!(!part.exists());
    assert_eq!(sha256_file(&dest), second.sha256);
    assert_eq!(sha256_file(&local), second.sha256);
    assert_eq!(
        std::fs::read_to_string(format!("{dest_s}.sha256")).unwrap().trim(),
        second.sha256
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o600);

    // Third: unchanged, so nothing is sent.
    let third = upload_file(&s, &local, &dest_s, &opts).await.unwrap();
    assert!(third.skipped);
    assert_eq!(third.bytes_sent, 0);
}

/// The probe goes by the rate it is given, not by this machine's speed: below the bar the plain
/// start stops and the rest goes compressed into the same part; above it everything goes plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_upload_starts_plain_and_goes_on_compressed_below_the_probes_rate() {
    let sshd = Sshd::start();
    let local = sshd.dir.path().join("big.sqlite");
    random_file(&local, PROBE_MIN_SIZE + (5 << 20) + 3);
    let dest = sshd.remote_dir("probe").join("client.sqlite");
    let dest_s = dest.to_string_lossy().to_string();
    let s = Session::connect(&sshd.target(), &ConnectOptions::default()).await.unwrap();
    let window = std::time::Duration::from_millis(200);

    let slow = UploadOptions { probe: Some(Probe { window, min_rate: f64::INFINITY }), ..Default::default() };
    let a = upload_file(&s, &local, &dest_s, &slow).await.unwrap();
    assert_eq!(a.mode, Mode::Compressed, "{a:?}");
    assert_eq!((a.resumed_from, a.bytes_sent), (0, a.size), "{a:?}");
    assert!(a.link_mb_per_s.is_some(), "{a:?}");
    assert_eq!(sha256_file(&dest), sha256_file(&local));

    let fast = UploadOptions { force: true, probe: Some(Probe { window, min_rate: 0.0 }), ..Default::default() };
    let b = upload_file(&s, &local, &dest_s, &fast).await.unwrap();
    assert_eq!(b.mode, Mode::Full, "{b:?}");
    assert!(b.note.as_deref().unwrap_or_default().ends_with("sent plain"), "{b:?}");
    assert_eq!((b.bytes_sent, b.bytes_on_wire), (b.size, b.size), "{b:?}");
    assert_eq!(sha256_file(&dest), b.sha256);
    assert!(!std::path::Path::new(&format!("{dest_s}.part")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_file_is_skipped_and_changed_file_is_sent_again() {
    let sshd = Sshd::start();
    let local = sshd.dir.path().join("small.sqlite");
    random_file(&local, 3 * 1024 * 1024 + 17);
    let dest = sshd.remote_dir("small").join("client.sqlite");
    let dest_s = dest.to_string_lossy().to_string();
    let opts = UploadOptions {
        hash_cache: Some(sshd.dir.path().join("state/h.json")),
        ..Default::default()
    };
    let s = Session::connect(&sshd.target(), &ConnectOptions::default()).await.unwrap();

    let a = upload_file(&s, &local, &dest_s, &opts).await.unwrap();
    assert!(!a.skipped);
    assert_eq!(a.bytes_sent, a.size);
    assert_eq!(a.resumed_from, 0);
    assert!(a.hashed_while_uploading);
    let b = upload_file(&s, &local, &dest_s, &opts).await.unwrap();
    assert!(b.skipped);
    assert_eq!(b.bytes_sent, 0);

    random_file(&local, 2 * 1024 * 1024);
    let c = upload_file(&s, &local, &dest_s, &opts).await.unwrap();
    assert!(!c.skipped);
    assert_eq!(c.bytes_sent, 2 * 1024 * 1024);
    assert_eq!(sha256_file(&dest), c.sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_side_follower_hashes_a_growing_file_and_stops_when_its_lifeline_drops() {
    use munero_infra::ssh::sftp_put::{follow_hash_cmd, follower_stdin};
    use munero_infra::ssh::{Echo, RemoteCmd};
    use std::io::Write;
    let sshd = Sshd::start();
    let s = Session::connect(&sshd.target(), &ConnectOptions::default()).await.unwrap();
    // A PATH holding only what the shell follower needs: a host without python3.
    let bare = sshd.remote_dir("bare-bin");
    for tool in ["mktemp", "mkfifo", "tail", "head", "cat", "rm", "sha256sum"] {
        let found = ["/usr/bin", "/bin"].iter().map(|d| std::path::Path::new(d).join(tool)).find(|p| p.exists()).unwrap();
        std::os::unix::fs::symlink(found, bare.join(tool)).unwrap();
    }
    let full: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    for (kind, prefix) in [("python3", String::new()), ("shell", format!("PATH={}; ", bare.display()))] {
        let path = sshd.remote_dir("follow").join(format!("{kind}.part"));
        std::fs::write(&path, b"").unwrap();
        let cmd = |n: u64| RemoteCmd::shell(format!("{prefix}{}", follow_hash_cmd(path.to_str().unwrap(), n)));

        // The file grows in three steps while the follower runs; it answers the hash of all of it.
        let (lifeline, input) = tokio::io::duplex(64);
        let writer = {
            let path = path.clone();
            let full = full.clone();
            std::thread::spawn(move || {
                for chunk in full.chunks(1_000_000) {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
                    f.write_all(chunk).unwrap();
                }
            })
        };
        let out = s.exec_with(&cmd(full.len() as u64), Some(follower_stdin(input)), Echo::Capture).await.unwrap();
        drop(lifeline);
        writer.join().unwrap();
        assert_eq!(out.status, Some(0), "{kind}: {}", out.stderr_str());
        let want = sha256_file(&path);
        assert_eq!(out.stdout_str().split_whitespace().next().unwrap(), want, "{kind}");

        // The file never reaches the size and the caller goes away: the follower ends instead of waiting.
        let (lifeline, input) = tokio::io::duplex(64);
        let dropper = async move {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            drop(lifeline);
        };
        let never = cmd(full.len() as u64 + 1);
        let (out, ()) = tokio::join!(s.exec_with(&never, Some(follower_stdin(input)), Echo::Capture), dropper);
        assert_ne!(out.unwrap().status, Some(0), "{kind}");
    }
}
