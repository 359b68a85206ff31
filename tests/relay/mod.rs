//! A TCP relay in front of the sshd fixture: counts the bytes that cross it each way (what a
//! link would carry, SSH framing and all) and can cut every connection once the client has sent
//! a given number of bytes, as a dropped link would, at a point that does not depend on timing.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct Relay {
    pub port: u16,
    /// Bytes from the client (this machine's deploy) to sshd.
    pub up: Arc<AtomicU64>,
    /// Bytes from sshd back to the client.
    pub down: Arc<AtomicU64>,
    cut_at: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(target_port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let r = Relay {
            port: listener.local_addr().unwrap().port(),
            up: Arc::default(),
            down: Arc::default(),
            cut_at: Arc::new(AtomicU64::new(u64::MAX)),
            cut: Arc::default(),
            open: Arc::default(),
        };
        let (up, down, cut_at, cut, open) = (r.up.clone(), r.down.clone(), r.cut_at.clone(), r.cut.clone(), r.open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else { continue };
                client.set_nodelay(true).ok();
                server.set_nodelay(true).ok();
                open.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let ctx = (cut_at.clone(), cut.clone(), open.clone());
                pump(client.try_clone().unwrap(), server.try_clone().unwrap(), up.clone(), Some(ctx));
                pump(server, client, down.clone(), None);
            }
        });
        r
    }

    /// Bytes both ways so far.
    pub fn total(&self) -> u64 {
        self.up.load(Ordering::SeqCst) + self.down.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.up.store(0, Ordering::SeqCst);
        self.down.store(0, Ordering::SeqCst);
    }

    /// Cut every connection once the client has sent `n` more bytes than now.
    pub fn cut_after(&self, n: u64) {
        self.cut.store(false, Ordering::SeqCst);
        self.cut_at.store(self.up.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    pub fn was_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

type CutCtx = (Arc<AtomicU64>, Arc<AtomicBool>, Arc<Mutex<Vec<TcpStream>>>);

fn pump(mut from: TcpStream, mut to: TcpStream, count: Arc<AtomicU64>, cut: Option<CutCtx>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let total = count.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if let Some((at, done, open)) = &cut {
                if total >= at.load(Ordering::SeqCst) {
                    done.store(true, Ordering::SeqCst);
                    at.store(u64::MAX, Ordering::SeqCst);
                    for s in open.lock().unwrap().drain(..) {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    break;
                }
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
