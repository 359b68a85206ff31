//! Embeds the deploy bundle (deploy/) into the binary so `deploy` works outside a checkout.
//! Only an allowlist of file kinds is embedded: a local `deploy/.env` with real credentials, or
//! receipts written by a wipe, never end up inside the binary.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn allowed(name: &str) -> bool {
    name == ".env.example"
        || name == "Caddyfile"
        || name.ends_with(".yml")
        || name.ends_with(".yaml")
        || name.ends_with(".sh")
        || name.ends_with(".md")
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf, u32)>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "receipts" && !name.starts_with('.') {
                walk(root, &p, out);
            }
        } else if allowed(&name) {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let mode = std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o644);
            let mode = if mode & 0o111 != 0 || name.ends_with(".sh") { 0o755 } else { 0o644 };
            out.push((rel, p.canonicalize().unwrap(), mode));
        }
    }
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let deploy = Path::new(&manifest).join("deploy");
    println!("cargo:rerun-if-changed=deploy");
    let mut files = Vec::new();
    walk(&deploy, &deploy, &mut files);
    for (_, abs, _) in &files {
        println!("cargo:rerun-if-changed={}", abs.display());
    }
    let mut src = String::from("pub static DEPLOY_FILES: &[(&str, &[u8], u32)] = &[\n");
    for (rel, abs, mode) in &files {
        writeln!(src, "    ({rel:?}, include_bytes!({:?}), 0o{mode:o}),", abs.display().to_string()).unwrap();
    }
    src.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("deploy_bundle.rs");
    std::fs::write(out, src).unwrap();
}
