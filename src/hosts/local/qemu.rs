//! QEMU for the local provider: the command lines as pure functions (tested as text), and the
//! few things done to a running VM: its QMP socket for a clean power-off, its pid for the rest.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

/// Guest ports forwarded from 127.0.0.1: SSH, HTTP and HTTPS, and the ports that must stay closed
/// inside (Ollama, the backend, the frontend), so the exposure probe can prove they are.
pub const FORWARDED: &[u16] = &[22, 80, 443, 11434, 8000, 3000];

/// How the VM boots: a cloud image with its own bootloader, or a kernel and initrd beside a disk
/// made by `image build`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    Disk,
    Kernel { kernel: PathBuf, initrd: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub name: String,
    pub cpus: u32,
    pub memory_mib: u32,
    /// kvm or tcg.
    pub accel: String,
    pub overlay: PathBuf,
    pub seed: PathBuf,
    pub boot: Boot,
    /// guest port -> host port on 127.0.0.1.
    pub forwards: BTreeMap<u16, u16>,
    pub qmp: PathBuf,
    pub console: PathBuf,
    pub pidfile: PathBuf,
}

/// `qemu-system-x86_64 ...`: daemonized, no display, serial console to a file, QMP on a socket.
pub fn run_argv(s: &VmSpec) -> Vec<String> {
    let mut a: Vec<String> = vec!["qemu-system-x86_64".into(), "-name".into(), s.name.clone()];
    if s.accel == "kvm" {
        a.extend(["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()]);
    } else {
        // Software emulation: all host cores, and the newest CPU model TCG can offer.
        a.extend(["-accel".into(), "tcg,thread=multi".into(), "-cpu".into(), "max".into()]);
    }
    a.extend(["-smp".into(), s.cpus.to_string(), "-m".into(), s.memory_mib.to_string()]);
    a.extend(["-display".into(), "none".into(), "-vga".into(), "none".into()]);
    a.extend(["-serial".into(), format!("file:{}", s.console.display())]);
    // The overlay first, so the root disk is /dev/vda; the NoCloud seed is found by its label.
    a.extend(["-drive".into(), format!("file={},if=virtio,format=qcow2", s.overlay.display())]);
    a.extend(["-drive".into(), format!("file={},if=virtio,format=raw,readonly=on", s.seed.display())]);
    if let Boot::Kernel { kernel, initrd } = &s.boot {
        a.extend(["-kernel".into(), kernel.display().to_string(), "-initrd".into(), initrd.display().to_string()]);
        // panic=10: a kernel that panics while booting restarts by itself. Under multi-threaded
        // TCG on a busy machine the kernel's own code patching can trip early in boot.
        a.extend(["-append".into(), "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=10".into()]);
    }
    let fwd: Vec<String> = s.forwards.iter().map(|(g, h)| format!("hostfwd=tcp:127.0.0.1:{h}-:{g}")).collect();
    a.extend(["-nic".into(), format!("user,model=virtio-net-pci,{}", fwd.join(","))]);
    a.extend(["-qmp".into(), format!("unix:{},server=on,wait=off", s.qmp.display())]);
    a.extend(["-pidfile".into(), s.pidfile.display().to_string(), "-daemonize".into()]);
    a
}

/// A thin copy-on-write disk over the base image, `size_gb` large (sparse).
pub fn overlay_argv(base: &Path, overlay: &Path, size_gb: u32) -> Vec<String> {
    vec![
        "qemu-img".into(),
        "create".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        "-F".into(),
        "qcow2".into(),
        "-b".into(),
        base.display().to_string(),
        overlay.display().to_string(),
        format!("{size_gb}G"),
    ]
}

/// The NoCloud seed: an ISO 9660 volume labelled `cidata` with `user-data` and `meta-data`.
pub fn seed_argv(iso: &Path, dir: &Path) -> Vec<String> {
    vec![
        "genisoimage".into(),
        "-quiet".into(),
        "-output".into(),
        iso.display().to_string(),
        "-volid".into(),
        "cidata".into(),
        "-joliet".into(),
        "-rock".into(),
        dir.join("user-data").display().to_string(),
        dir.join("meta-data").display().to_string(),
        dir.join("network-config").display().to_string(),
    ]
}

/// The seed's `network-config`: DHCP over IPv4 on the one NIC. Without it cloud-init's fallback
/// also asks for DHCPv6, which QEMU's user-mode network never answers, and the boot waits on it.
/// The entry is named for the interface (ifupdown takes the name as it is; networkd matches).
pub const NETWORK_CONFIG: &str = "version: 2\nethernets:\n  eth0:\n    match:\n      name: \"e*\"\n    dhcp4: true\n    dhcp6: false\n";

/// `meta-data` of the seed: the instance id changes per trial, so cloud-init runs once per VM.
pub fn meta_data(trial: &str, instance_id: &str) -> String {
    format!("instance-id: {instance_id}\nlocal-hostname: {trial}\n")
}

/// `2x4` -> (2 vCPUs, 4096 MiB).
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (c, g) = size.split_once('x')?;
    let (c, g): (u32, u32) = (c.parse().ok()?, g.parse().ok()?);
    ((1..=64).contains(&c) && (1..=512).contains(&g)).then_some((c, g * 1024))
}

/// Free TCP ports on 127.0.0.1, one per guest port, from a range the trial's name picks: the
/// same trial gets the same ports from one run to the next (so a dry run shows the ports the real
/// run uses), and a port something else holds is skipped for the next free one.
pub fn free_ports(trial: &str, guest: &[u16]) -> Result<BTreeMap<u16, u16>> {
    let h = trial.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    let mut port = 20_000 + (h % 30_000) as u16;
    let mut held = Vec::new();
    let mut out = BTreeMap::new();
    for g in guest {
        let mut tries = 0;
        loop {
            tries += 1;
            if tries > 2_000 {
                anyhow::bail!("no free port on 127.0.0.1 near {port} for the VM's port {g}");
            }
            port = if port >= 60_000 { 20_000 } else { port + 1 };
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                out.insert(*g, port);
                held.push(l);
                break;
            }
        }
    }
    Ok(out)
}

/// The process exists and has not ended (a zombie waiting for its parent has ended).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if pid == 0 || unsafe { libc::kill(pid as i32, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name in parentheses, which may itself hold spaces.
    stat.rsplit_once(") ").map_or(true, |(_, rest)| !rest.starts_with('Z'))
}

/// One QMP command over the VM's socket (capabilities negotiated first).
pub fn qmp(socket: &Path, command: &str) -> Result<()> {
    let s = UnixStream::connect(socket).with_context(|| format!("connecting to QMP at {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line)?; // greeting
    for cmd in ["qmp_capabilities", command] {
        writeln!(w, "{{\"execute\": \"{cmd}\"}}")?;
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                // `quit` closes the socket before answering.
                return if cmd == "quit" { Ok(()) } else { Err(anyhow!("QMP closed the connection")) };
            }
            if line.contains("\"return\"") {
                break;
            }
            if line.contains("\"error\"") {
                return Err(anyhow!("QMP {cmd}: {}", line.trim()));
            }
        }
    }
    Ok(())
}

/// Power off cleanly (ACPI), then `quit`, then SIGKILL: each after a wait. Ok once the process
/// is gone.
pub fn stop(pid: u32, socket: &Path, grace: Duration) -> Result<&'static str> {
    if !alive(pid) {
        return Ok("was not running");
    }
    let wait = |d: Duration| {
        let t = Instant::now();
        while alive(pid) && t.elapsed() < d {
            std::thread::sleep(Duration::from_millis(200));
        }
        !alive(pid)
    };
    if qmp(socket, "system_powerdown").is_ok() && wait(grace) {
        return Ok("powered off");
    }
    if qmp(socket, "quit").is_ok() && wait(Duration::from_secs(10)) {
        return Ok("stopped (quit)");
    }
    // SAFETY: plain kill(2) on the VM's own pid, recorded when it started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    if wait(Duration::from_secs(10)) {
        Ok("killed")
    } else {
        Err(anyhow!("QEMU process {pid} is still running after SIGKILL"))
    }
}

/// How many kernel panics the serial console shows.
pub fn panics(console: &Path) -> usize {
    std::fs::read(console).map(|b| String::from_utf8_lossy(&b).matches("Kernel panic - not syncing").count()).unwrap_or(0)
}

/// The last lines of the serial console, for errors.
pub fn console_tail(console: &Path, n: usize) -> String {
    let text = std::fs::read(console).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            name: "munero-acme".into(),
            cpus: 2,
            memory_mib: 4096,
            accel: "tcg".into(),
            overlay: "/v/acme/disk.qcow2".into(),
            seed: "/v/acme/seed.iso".into(),
            boot: Boot::Kernel { kernel: "/i/vmlinuz".into(), initrd: "/i/initrd.img".into() },
            forwards: [(22, 40022), (443, 40443)].into_iter().collect(),
            qmp: "/v/acme/qmp.sock".into(),
            console: "/v/acme/console.log".into(),
            pidfile: "/v/acme/qemu.pid".into(),
        }
    }

    #[test]
    fn kernel_panics_are_counted_from_the_serial_console() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("console.log");
        assert_eq!(panics(&c), 0, "no console yet");
        std::fs::write(&c, "[ 3.6] Kernel panic - not syncing: Fatal exception in interrupt\n[ 5.6] Rebooting in 10 seconds..\nLinux version\n").unwrap();
        assert_eq!(panics(&c), 1);
    }

    #[test]
    fn the_vm_command_line_reads_as_it_runs() {
        let a = run_argv(&spec()).join(" ");
        assert!(a.starts_with("qemu-system-x86_64 -name munero-acme -accel tcg,thread=multi -cpu max -smp 2 -m 4096"), "{a}");
        assert!(a.contains("-drive file=/v/acme/disk.qcow2,if=virtio,format=qcow2 -drive file=/v/acme/seed.iso,if=virtio,format=raw,readonly=on"));
        assert!(a.contains("-kernel /i/vmlinuz -initrd /i/initrd.img -append root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=10"));
        assert!(a.contains("-nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40443-:443"));
        assert!(a.ends_with("-qmp unix:/v/acme/qmp.sock,server=on,wait=off -pidfile /v/acme/qemu.pid -daemonize"));
        let mut k = spec();
        k.accel = "kvm".into();
        k.boot = Boot::Disk;
        let a = run_argv(&k).join(" ");
        assert!(a.contains("-accel kvm -cpu host") && !a.contains("-kernel"), "{a}");
    }

    #[test]
    fn sizes_and_helper_command_lines() {
        assert_eq!(parse_size("2x4"), Some((2, 4096)));
        assert_eq!(parse_size("0x4"), None);
        assert_eq!(parse_size("cpu"), None);
        assert_eq!(
            overlay_argv(Path::new("/b.qcow2"), Path::new("/o.qcow2"), 40).join(" "),
            "qemu-img create -q -f qcow2 -F qcow2 -b /b.qcow2 /o.qcow2 40G"
        );
        assert!(seed_argv(Path::new("/s.iso"), Path::new("/d")).join(" ").contains("-volid cidata -joliet -rock /d/user-data /d/meta-data /d/network-config"));
        assert_eq!(meta_data("acme", "munero-acme-1"), "instance-id: munero-acme-1\nlocal-hostname: acme\n");
    }

    #[test]
    fn free_ports_are_distinct_bindable_and_the_same_for_the_same_trial() {
        let p = free_ports("acme", FORWARDED).unwrap();
        assert_eq!(p, free_ports("acme", FORWARDED).unwrap());
        // A taken port is skipped.
        let first = p[&FORWARDED[0]];
        let taken = std::net::TcpListener::bind(("127.0.0.1", first)).unwrap();
        assert_ne!(free_ports("acme", FORWARDED).unwrap()[&FORWARDED[0]], first);
        drop(taken);
        let mut v: Vec<u16> = p.values().copied().collect();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), FORWARDED.len());
        for port in v {
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
