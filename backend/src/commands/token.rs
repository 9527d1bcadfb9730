//! NAME
//!     backend token — create, list and revoke API tokens
//!
//! SYNOPSIS
//!     backend token create NAME
//!     backend token list [--json]
//!     backend token revoke NAME
//!
//! DESCRIPTION
//!     `create` prints the new token, and only it, on stdout (so that
//!     `TOKEN=$(backend token create ci)` captures it); it is shown this
//!     once: the database keeps its SHA-256 only. A name is never reused,
//!     not even a revoked token's. `list` shows names and dates, never a
//!     hash. `revoke` takes effect on the next request that presents the
//!     token. All three work on `DATABASE_URL`'s database, while the service runs.

use std::io::Write;

use anyhow::Context;

use super::database;
use crate::{
    api_token::{self, ApiToken},
    store::{Revocation, StoreError, TokenInfo},
};

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once on stdout (a note goes to stderr).
    Create {
        /// 1 to 64 printable characters without spaces, e.g. `ci`; never reused.
        name: String,
    },
    /// List every token: name, created, revoked (never a hash).
    List {
        /// One JSON object: {"tokens": [{"name", "created_at", "revoked_at"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: the next request that presents it is refused (401).
    Revoke {
        /// The name given at `create`.
        name: String,
    },
}

impl TokenCommand {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            TokenCommand::Create { name } => create(&name),
            TokenCommand::List { json } => list(json),
            TokenCommand::Revoke { name } => revoke(&name),
        }
    }
}

/// Checks the name before touching the database, stores the hash, and only
/// then prints the token: a token that was not stored is never shown.
fn create(name: &str) -> anyhow::Result<()> {
    api_token::check_name(name).map_err(anyhow::Error::msg)?;
    let token = ApiToken::generate()?;
    let mut db = database::connect()?;
    match db.create_token(name, &token.hash()) {
        Ok(_) => {}
        Err(StoreError::Duplicate) => anyhow::bail!(
            "a token named `{name}` already exists (names are never reused, not even a revoked \
             token's): choose another name; `backend token list` shows the names taken"
        ),
        Err(StoreError::Other(e)) => return Err(e.context(format!("storing token `{name}`"))),
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", token.expose())
        .and_then(|()| stdout.flush())
        .with_context(|| {
            format!(
                "printing the token failed, so nobody has it: revoke it \
                 (`backend token revoke {name}`) and create one under another name"
            )
        })?;
    eprintln!(
        "created token `{name}`: it is shown only this once (the database keeps only its hash); \
         clients send it as `Authorization: Bearer <token>`"
    );
    Ok(())
}

fn list(json: bool) -> anyhow::Result<()> {
    let tokens = database::connect()?.list_tokens()?;
    let text = if json {
        format!("{:#}\n", serde_json::json!({ "tokens": tokens }))
    } else {
        table(&tokens)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the list to stdout")
}

/// `NAME  CREATED  REVOKED` columns, names padded to the longest.
fn table(tokens: &[TokenInfo]) -> String {
    if tokens.is_empty() {
        return "no tokens yet: create one with `backend token create NAME`\n".to_owned();
    }
    let width = tokens
        .iter()
        .map(|t| t.name.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = format!("{:<width$}  {:<20}  REVOKED\n", "NAME", "CREATED");
    for token in tokens {
        let revoked = token.revoked_at.as_deref().unwrap_or("-");
        out.push_str(&format!(
            "{:<width$}  {:<20}  {revoked}\n",
            token.name, token.created_at
        ));
    }
    out
}

fn revoke(name: &str) -> anyhow::Result<()> {
    let outcome = database::connect()?.revoke_token(name)?;
    match outcome {
        Revocation::Revoked(info) => eprintln!(
            "revoked token `{name}` at {}: requests presenting it are refused from now on",
            info.revoked_at.as_deref().unwrap_or("now")
        ),
        Revocation::AlreadyRevoked(info) => eprintln!(
            "token `{name}` was already revoked at {}; nothing changed",
            info.revoked_at.as_deref().unwrap_or("an earlier time")
        ),
        Revocation::Unknown => anyhow::bail!(
            "no token named `{name}`: `backend token list` shows the tokens there are"
        ),
    }
    Ok(())
}
