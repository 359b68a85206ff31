//! Remote commands as data: an argv that is quoted once, at the edge, into the string the SSH
//! `exec` request carries. Pure functions, no network.

use std::fmt;

/// One remote command line. `Argv` is quoted word by word; `Shell` is a snippet that needs the
/// remote shell (pipes, `&&`, redirections) and is passed as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteCmd {
    Argv(Vec<String>),
    Shell(String),
}

impl RemoteCmd {
    pub fn argv<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RemoteCmd::Argv(words.into_iter().map(Into::into).collect())
    }

    pub fn shell(s: impl Into<String>) -> Self {
        RemoteCmd::Shell(s.into())
    }

    /// The exact string sent in the exec request.
    pub fn to_command_line(&self) -> String {
        match self {
            RemoteCmd::Argv(words) => words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "),
            RemoteCmd::Shell(s) => s.clone(),
        }
    }
}

/// In a plan a command is the exact line the host receives.
impl serde::Serialize for RemoteCmd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_command_line())
    }
}

impl fmt::Display for RemoteCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_command_line())
    }
}

/// POSIX shell quoting: words made only of safe characters pass unchanged, anything else is
/// wrapped in single quotes with embedded single quotes written as `'\''`.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("docker"), "docker");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn argv_joins_quoted_words() {
        let c = RemoteCmd::argv(["sha256sum", "--", "/data/my file.sqlite"]);
        assert_eq!(c.to_command_line(), "sha256sum -- '/data/my file.sqlite'");
    }
}
