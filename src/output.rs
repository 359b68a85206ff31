//! Output: results on stdout (a table, or exactly one JSON document), progress on stderr.

use serde_json::Value;

/// Output format: a table for people, or exactly one JSON document on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// What a command produced: one JSON document and its human rendering.
#[derive(Debug)]
pub struct Report {
    pub json: Value,
    pub human: String,
    /// Exit code for a command that finished but partly failed (teardown): 0 or 1.
    pub exit_code: u8,
}

impl Report {
    pub fn new(json: Value, human: impl Into<String>) -> Self {
        Report { json, human: human.into(), exit_code: 0 }
    }

    /// Add `"warnings": [...]` to the JSON document (only when there are any), so a script sees
    /// what a person sees on stderr.
    pub fn with_warnings(mut self, warnings: &[String]) -> Self {
        if warnings.is_empty() {
            return self;
        }
        if let Some(obj) = self.json.as_object_mut() {
            let list = obj.entry("warnings").or_insert_with(|| Value::Array(Vec::new()));
            if let Some(a) = list.as_array_mut() {
                a.extend(warnings.iter().cloned().map(Value::String));
            }
        }
        self
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub format: OutputFormat,
}

impl Out {
    pub fn new(format: OutputFormat) -> Self {
        Out { format }
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// A progress line for people, always on stderr.
    pub fn progress(&self, msg: impl AsRef<str>) {
        eprintln!("{}", msg.as_ref());
    }

    /// Each warning as a `warning: ...` progress line; returns them for the JSON document.
    pub fn warn_all(&self, warnings: Vec<String>) -> Vec<String> {
        for w in &warnings {
            self.progress(format!("warning: {w}"));
        }
        warnings
    }

    /// Print the command's result: one JSON document, or the human text.
    pub fn emit(&self, report: &Report) {
        match self.format {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report.json).unwrap_or_else(|_| "{}".into())),
            OutputFormat::Table => {
                if !report.human.is_empty() {
                    println!("{}", report.human.trim_end());
                }
            }
        }
    }
}

/// Colour on stderr only for a person at a terminal: escape codes in a log file or a CI
/// capture are noise, and NO_COLOR (https://no-color.org) turns them off everywhere.
pub fn stderr_colour() -> bool {
    use std::io::IsTerminal;
    colour_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
}

fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.map_or(true, |v| v.is_empty())
}

/// A plain text table with left-aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    for r in rows {
        out.push(line(r.clone()));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&["TRIAL", "IPV4"], &[vec!["a".into(), "1.2.3.4".into()], vec!["longer".into(), "-".into()]]);
        assert_eq!(t, "TRIAL   IPV4\na       1.2.3.4\nlonger  -");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None));
    }

    #[test]
    fn warnings_join_the_json_document_only_when_there_are_some() {
        let r = Report::new(serde_json::json!({"ok": true}), "").with_warnings(&[]);
        assert!(r.json.get("warnings").is_none());
        let r = r.with_warnings(&["a".into()]).with_warnings(&["b".into()]);
        assert_eq!(r.json["warnings"], serde_json::json!(["a", "b"]));
    }
}
