//! What every management verb shares: `-r/--registry`, `--output`,
//! `--yes`, and a client holding a live directory token for the registry.

use clap::Args;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;
use serde_json::Value;

use crate::client::Client;
use crate::names;
use crate::output::{self, Format};
use crate::prompt;
use crate::renew;
use crate::session::Sessions;

/// Flags every management verb takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The login server to manage (default: the last one logged in to).
    #[arg(
        short = 'r',
        long,
        global = true,
        env = "BERTH_REGISTRY",
        value_name = "LOGIN_SERVER"
    )]
    pub registry: Option<String>,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, global = true, value_enum)]
    pub output: Option<Format>,
    /// Do not ask before destructive changes (required when stdin is not a
    /// terminal).
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

impl Common {
    /// Refuse a destructive change unless confirmed (see [`prompt::confirm`]).
    pub fn confirm(&self, what: &str) -> anyhow::Result<()> {
        prompt::confirm(self.yes, what)
    }
}

/// A management session on one registry.
pub struct Ctx {
    client: Client,
    token: String,
    format: Format,
}

impl Ctx {
    /// Resolve the registry, check its name and get a live directory token.
    pub async fn open(common: &Common) -> anyhow::Result<Ctx> {
        let mut sessions = Sessions::load()?;
        let host = sessions.resolve_registry(common.registry.as_deref())?;
        names::check_login_server(&host)?;
        let (client, token) = renew::directory_token(&mut sessions, &host).await?;
        Ok(Ctx {
            client,
            token,
            format: output::resolve(common.output),
        })
    }

    /// One API call; `None` for an empty answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Option<Value>> {
        self.client
            .api(method, path, body.as_ref(), &self.token)
            .await
    }

    /// A call whose answer is printed (`columns` for table/tsv).
    pub async fn show(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        columns: &[&str],
    ) -> anyhow::Result<()> {
        if let Some(v) = self.call(method, path, body).await? {
            self.print(&v, columns);
        }
        Ok(())
    }

    /// The output format chosen.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Print a value in the chosen format.
    pub fn print(&self, v: &Value, columns: &[&str]) {
        print!("{}", output::render(v, self.format, columns));
    }
}

/// `GET <collection>` (e.g. `users`), printed.
pub async fn list(c: &Common, collection: &str, columns: &[&str]) -> anyhow::Result<()> {
    Ctx::open(c)
        .await?
        .show(Method::GET, collection, None, columns)
        .await
}

/// `GET <collection>/<name>`, printed.
pub async fn show_one(
    c: &Common,
    collection: &str,
    name: &str,
    columns: &[&str],
) -> anyhow::Result<()> {
    let path = format!("{collection}/{}", seg(name));
    Ctx::open(c)
        .await?
        .show(Method::GET, &path, None, columns)
        .await
}

/// Confirm "delete `what`", then `DELETE <collection>/<name>`.
pub async fn delete_one(
    c: &Common,
    collection: &str,
    name: &str,
    what: &str,
) -> anyhow::Result<()> {
    c.confirm(&format!("delete {what}"))?;
    let path = format!("{collection}/{}", seg(name));
    Ctx::open(c)
        .await?
        .show(Method::DELETE, &path, None, &[])
        .await
}

/// Characters escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Escape one path segment (`/` included).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Escape a repository name, keeping its `/` separators.
pub fn repo_path(s: &str) -> String {
    s.split('/').map(seg).collect::<Vec<_>>().join("/")
}

/// `--repository R ACTION...` groups as `repositories/R/ACTION` rules.
pub fn rules(groups: &[Vec<String>]) -> Vec<String> {
    groups
        .iter()
        .filter_map(|g| g.split_first())
        .flat_map(|(repo, actions)| {
            actions
                .iter()
                .map(move |a| format!("repositories/{repo}/{a}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_rules() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(repo_path("team/app"), "team/app");
        let r = rules(&[
            vec!["app".into(), "content/read".into(), "content/write".into()],
            vec!["x/*".into(), "metadata/read".into()],
        ]);
        assert_eq!(
            r,
            [
                "repositories/app/content/read",
                "repositories/app/content/write",
                "repositories/x/*/metadata/read"
            ]
        );
    }
}
