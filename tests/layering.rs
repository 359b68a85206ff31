//! The crate's modules form layers: no module reaches, directly or through others, back into one
//! that uses it. Read from the source itself (every `crate::`, `super::` and `self::` path, also
//! inside functions), so a loop hidden by a function-local `use` is found too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod common;

/// Module path of a source file: src/ssh/mod.rs -> ["ssh"], src/deploy/env.rs -> ["deploy", "env"].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Code without comments, string literals and `#[cfg(test)]` modules (tests may reach anywhere).
fn code_of(text: &str) -> String {
    code_without(text, true)
}

fn code_without(text: &str, strings_too: bool) -> String {
    let body = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::new();
    for line in body.lines() {
        let l = line.split("//").next().unwrap_or("");
        let mut in_str = false;
        for c in l.chars() {
            if c == '"' && strings_too {
                in_str = !in_str;
                continue;
            }
            if !in_str {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// Every module path a file refers to, expanded from `a::{b, c::d}` groups.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let starts = ["crate::", "super::", "self::"];
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 8)].iter().collect();
        let prev_ident = i > 0 && (bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if let Some(s) = starts.iter().find(|s| rest.starts_with(**s)).filter(|_| !prev_ident) {
            let head = s.trim_end_matches("::").to_string();
            let (paths, end) = parse_path(&bytes, i + s.len());
            for p in paths {
                let mut full = vec![head.clone()];
                full.extend(p);
                out.push(full);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Parse `a::b::{c, d::e}` starting at `i`; returns the expanded paths and where it ended.
fn parse_path(b: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix: Vec<String> = Vec::new();
    loop {
        while i < b.len() && b[i].is_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == '{' {
            let mut out = Vec::new();
            i += 1;
            loop {
                while i < b.len() && (b[i].is_whitespace() || b[i] == ',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == '}' {
                    return (out, i + 1);
                }
                let (inner, end) = parse_path(b, i);
                for p in inner {
                    let mut full = prefix.clone();
                    full.extend(p);
                    out.push(full);
                }
                i = end;
            }
        }
        let start = i;
        while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
            i += 1;
        }
        if start == i {
            return (vec![prefix], i);
        }
        prefix.push(b[start..i].iter().collect());
        if i + 1 < b.len() && b[i] == ':' && b[i + 1] == ':' {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

#[test]
fn src_has_no_import_loops() {
    let src = common::repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let me = module_of(&src, f);
        let text = std::fs::read_to_string(f).unwrap();
        for p in paths_in(&code_of(&text)) {
            let mut abs: Vec<String> = match p[0].as_str() {
                "crate" => vec![],
                "self" => me.clone(),
                _ => {
                    let mut m = me.clone();
                    m.pop();
                    m
                }
            };
            let mut rest = &p[1..];
            while rest.first().map(String::as_str) == Some("super") {
                abs.pop();
                rest = &rest[1..];
            }
            abs.extend(rest.iter().cloned());
            // The longest prefix that is a module of this crate.
            let target = (0..=abs.len()).rev().map(|n| abs[..n].to_vec()).find(|m| modules.contains(m));
            let Some(target) = target else { continue };
            // The crate root only declares modules; a module using itself is no edge.
            if target.is_empty() || target == me {
                continue;
            }
            edges.entry(me.join("::")).or_default().insert(target.join("::"));
        }
    }
    // Depth-first search for a cycle; report it as a path.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut cyc = stack[at..].to_vec();
                    cyc.push(m.clone());
                    return Some(cyc);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    let mut loops = Vec::new();
    for n in edges.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, &edges, &mut state, &mut Vec::new()) {
                loops.push(c.join(" -> "));
            }
        }
    }
    assert!(loops.is_empty(), "import loops in src/:\n{}", loops.join("\n"));
}

#[test]
fn the_loop_finder_sees_grouped_and_nested_paths() {
    let p = paths_in("use crate::{a, b::{c, d::E}};\nfn f() { super::x::y(); }");
    let s: Vec<String> = p.iter().map(|v| v.join("::")).collect();
    assert_eq!(s, ["crate::a", "crate::b::c", "crate::b::d::E", "super::x::y"]);
}

#[test]
fn command_files_stay_small() {
    let dir = common::repo_root().join("src/commands");
    let mut big = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let n = std::fs::read_to_string(&p).unwrap().lines().count();
        if n > 250 {
            big.push(format!("{} ({n} lines)", p.display()));
        }
    }
    assert!(big.is_empty(), "command files only wire arguments to plans; move the rest out: {big:?}");
}

#[test]
fn no_command_asks_which_provider_it_talks_to() {
    let dir = common::repo_root().join("src/commands");
    let mut hits = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let code = code_without(&std::fs::read_to_string(&p).unwrap(), false);
        for (i, l) in code.lines().enumerate() {
            if l.contains("ProviderKind::") || l.contains("== \"ssh\"") || l.contains("== \"hetzner\"") {
                hits.push(format!("{}:{}: {}", p.display(), i + 1, l.trim()));
            }
        }
    }
    assert!(hits.is_empty(), "provider tests belong in src/hosts/: {hits:?}");
}
