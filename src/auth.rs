//! A trial's Basic Auth users: several per trial (one per person at the client), kept 0600 in
//! the trial's directory as `users.toml`. Only bcrypt hashes leave this machine: they go to
//! `<stack>/deploy/auth/users.caddy`, which the Caddyfile imports inside its `basic_auth` block,
//! so `caddy reload` in the running container applies a new set without restarting anything.
//!
//! The first user is the one deploy creates and smoke logs in with; `basic-auth.toml` keeps a copy
//! of it so trials deployed before several users existed read the same as before.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::deploy::env::Credentials;
use crate::error::usage;
use crate::remote;
use crate::ssh::{quote, RemoteCmd};
use crate::trial::Trial;

pub const USERS_FILE: &str = "users.toml";
/// Where the stack's Caddy finds the users, relative to the stack directory.
pub const REMOTE_USERS: &str = "deploy/auth/users.caddy";
/// The account a locked trial carries: Caddy wants at least one, and nobody knows its password.
pub const LOCKED_ACCOUNT: &str = "locked";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub password: String,
    pub bcrypt_hash: String,
    /// When the current password was made (RFC 3339).
    #[serde(default)]
    pub since: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserSet {
    /// Set by `revoke --all`: every request is refused until a user is added.
    pub locked: bool,
    #[serde(rename = "user")]
    pub users: Vec<User>,
}

impl UserSet {
    pub fn names(&self) -> Vec<String> {
        self.users.iter().map(|u| u.name.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The user deploy and smoke log in with.
    pub fn first(&self) -> Option<&User> {
        self.users.first()
    }

    pub fn add(&mut self, name: &str, now: &str) -> Result<&User> {
        user_name(name)?;
        if self.get(name).is_some() {
            return Err(usage(format!("user {name} already exists; use `auth rotate` for a new password")));
        }
        self.users.push(new_user(name, now)?);
        self.locked = false;
        Ok(self.users.last().expect("pushed above"))
    }

    pub fn rotate(&mut self, name: &str, now: &str) -> Result<&User> {
        let i = self.index(name)?;
        self.users[i] = new_user(name, now)?;
        Ok(&self.users[i])
    }

    /// Remove one user, or all with `all` (which locks the trial). The last user goes only with
    /// `all`: a trial without users must be a decision, not an accident.
    pub fn revoke(&mut self, name: Option<&str>, all: bool) -> Result<Vec<String>> {
        if all {
            let gone = self.names();
            self.users.clear();
            self.locked = true;
            return Ok(gone);
        }
        let name = name.ok_or_else(|| usage("name the user to revoke, or pass --all to lock the trial"))?;
        let i = self.index(name)?;
        if self.users.len() == 1 {
            return Err(usage(format!(
                "{name} is the trial's last user: revoking it locks the trial for everyone; pass --all to do that"
            )));
        }
        self.users.remove(i);
        Ok(vec![name.to_string()])
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.users.iter().position(|u| u.name == name).ok_or_else(|| {
            usage(format!("no user {name} on this trial (users: {}); see `auth list`", self.names().join(", ")))
        })
    }

    /// The file Caddy imports: one `name hash` line per user. A locked set carries one account
    /// whose password was never kept, so every request gets 401.
    pub fn caddy_file(&self) -> Result<String> {
        let mut s = String::from("# Basic Auth users of this trial, written by munero-infra (bcrypt hashes only).\n");
        if self.users.is_empty() {
            let nobody = Credentials::generate(LOCKED_ACCOUNT)?;
            s.push_str(&format!("{LOCKED_ACCOUNT} {}\n", nobody.bcrypt_hash));
            return Ok(s);
        }
        for u in &self.users {
            s.push_str(&format!("{} {}\n", u.name, u.bcrypt_hash));
        }
        Ok(s)
    }
}

fn new_user(name: &str, now: &str) -> Result<User> {
    let c = Credentials::generate(name)?;
    Ok(User { name: c.user, password: c.password, bcrypt_hash: c.bcrypt_hash, since: now.to_string() })
}

/// A user name Caddy reads as one token and a person can type: 1-32 of a-z, 0-9, '.', '_', '-'.
pub fn user_name(name: &str) -> Result<()> {
    let ok = (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name != LOCKED_ACCOUNT;
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "user name {name:?} is not valid: use 1 to 32 of a-z, 0-9, '.', '_', '-' (and not {LOCKED_ACCOUNT:?})"
        )))
    }
}

/// The trial's users: `users.toml`, else the single user of `basic-auth.toml` (a trial deployed
/// before several users existed), else none (never deployed).
pub fn load(ctx: &Ctx, t: &Trial) -> Result<UserSet> {
    let p = remote::trial_path(ctx, t, USERS_FILE);
    if p.exists() {
        let s = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        return toml::from_str(&s).with_context(|| format!("parsing {}", p.display()));
    }
    Ok(match remote::load_credentials(ctx, t)? {
        Some(c) => UserSet {
            locked: false,
            users: vec![User { name: c.user, password: c.password, bcrypt_hash: c.bcrypt_hash, since: String::new() }],
        },
        None => UserSet::default(),
    })
}

/// Save the set (0600) and keep `basic-auth.toml` equal to its first user, or remove it when the
/// set is empty, so smoke and deploy log in with a user that exists.
pub fn save(ctx: &Ctx, t: &Trial, set: &UserSet) -> Result<()> {
    ctx.store.write_secret(&t.name, USERS_FILE, toml::to_string(set)?.as_bytes())?;
    match set.first() {
        Some(u) => {
            let c = Credentials { user: u.name.clone(), password: u.password.clone(), bcrypt_hash: u.bcrypt_hash.clone() };
            ctx.store.write_secret(&t.name, remote::CREDENTIALS_FILE, toml::to_string(&c)?.as_bytes())?;
        }
        None => {
            let p = remote::credentials_path(ctx, t);
            if p.exists() {
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    Ok(())
}

/// What deploy logs in with and sends: the first user (created on the first deploy) and the set.
/// A locked trial is not unlocked by a deploy.
pub fn for_deploy(ctx: &Ctx, t: &Trial) -> Result<(Credentials, UserSet)> {
    let set = load(ctx, t)?;
    if set.locked && set.users.is_empty() {
        return Err(usage(format!(
            "trial {} is locked (auth revoke --all): add a user with `auth add {} USER` before deploying",
            t.name, t.name
        )));
    }
    let c = remote::ensure_credentials(ctx, t)?;
    let set = if set.users.is_empty() {
        let set = UserSet {
            locked: false,
            users: vec![User { name: c.user.clone(), password: c.password.clone(), bcrypt_hash: c.bcrypt_hash.clone(), since: String::new() }],
        };
        save(ctx, t, &set)?;
        set
    } else {
        set
    };
    Ok((c, set))
}

pub fn remote_users_path(remote_dir: &str) -> String {
    format!("{remote_dir}/{REMOTE_USERS}")
}

/// `caddy reload` inside the running Caddy container: the new users apply to the next request and
/// open connections are kept. A stack that was never brought up has nothing to reload; its first
/// `compose up` reads the file.
pub fn reload_cmd(remote_dir: &str, gpu: bool) -> RemoteCmd {
    RemoteCmd::shell(format!(
        "if [ ! -f {d}/deploy/docker-compose.yml ]; then echo 'no stack deployed yet: the next deploy starts Caddy with these users'; exit 0; fi; \
         {} exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile",
        crate::deploy::compose_cmd(remote_dir, gpu, &[]).to_command_line().trim_end(),
        d = quote(remote_dir),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(names: &[&str]) -> UserSet {
        let mut s = UserSet::default();
        for n in names {
            s.users.push(User { name: n.to_string(), password: format!("pw-{n}"), bcrypt_hash: format!("$2b$04$hash-{n}"), since: String::new() });
        }
        s
    }

    #[test]
    fn revoking_the_last_user_needs_all_which_locks() {
        let mut s = set_of(&["ann"]);
        let e = s.revoke(Some("ann"), false).unwrap_err();
        assert!(e.to_string().contains("last user") && e.to_string().contains("--all"), "{e}");
        assert_eq!(s.revoke(None, true).unwrap(), vec!["ann".to_string()]);
        assert!(s.locked && s.users.is_empty());
        let f = s.caddy_file().unwrap();
        assert!(f.lines().nth(1).unwrap().starts_with("locked $2"), "{f}");
    }

    #[test]
    fn caddy_file_has_names_and_hashes_never_passwords() {
        let s = set_of(&["ann", "bob"]);
        let f = s.caddy_file().unwrap();
        assert!(f.ends_with("ann $2b$04$hash-ann\nbob $2b$04$hash-bob\n"), "{f}");
        assert!(!f.contains("pw-"));
    }

    #[test]
    fn rotate_replaces_only_that_users_password() {
        let mut s = set_of(&["ann", "bob"]);
        let new = s.rotate("bob", "2026-01-01T00:00:00Z").unwrap().clone();
        assert_ne!(new.password, "pw-bob");
        assert!(bcrypt::verify(&new.password, &new.bcrypt_hash).unwrap());
        assert_eq!(s.get("ann").unwrap().password, "pw-ann");
        assert!(s.rotate("cy", "x").unwrap_err().to_string().contains("no user cy"));
    }

    #[test]
    fn user_names_are_single_caddy_tokens() {
        for ok in ["ann", "j.doe", "ops_2", "a-b"] {
            user_name(ok).unwrap();
        }
        for bad in ["", "Ann", "a b", "a\tb", "locked", "x{y}", &"a".repeat(33)] {
            assert!(user_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reload_runs_caddy_reload_in_the_container_only_when_a_stack_exists() {
        let c = reload_cmd("munero", false).to_command_line();
        assert!(c.starts_with("if [ ! -f munero/deploy/docker-compose.yml ]; then"), "{c}");
        assert!(c.ends_with("dc exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile"), "{c}");
    }
}
