//! berth's client CLI: `berth login|logout`, the docker credential helper
//! (`docker-credential-berth` / `berth credential-helper`), the management
//! verbs over `/api/v1` (`berth user|group|sp|admin|token|scope-map|
//! role-assignment|network-rule|registry|repository ...`), the audit logs
//! (`berth logs login|repository|explain`), Kubernetes pulls (`berth
//! kubelet-credential-provider`, `berth pull-secret create`) and `berth
//! completion`.
//!
//! The `berth` binary flattens [`Command`] into its own clap tree and calls
//! [`run`].

pub mod client;
pub mod commands;
pub mod cred_helper;
pub mod docker_config;
pub mod explain_view;
pub mod kube;
pub mod login;
pub mod mgmt;
pub mod names;
pub mod output;
pub mod private_file;
pub mod prompt;
pub mod renew;
pub mod repo_actions;
pub mod session;

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::commands::*;

/// The client commands, one variant per group.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Log in to a registry: directory login, exchange for a registry
    /// refresh token, write docker's config.json.
    Login(login::LoginArgs),
    /// Forget a registry's credentials (berth session and docker config).
    Logout(login::LogoutArgs),
    /// Speak the docker credential-helper protocol on stdin/stdout (what
    /// `docker-credential-berth` runs).
    CredentialHelper(HelperArgs),
    /// Directory users.
    User(users::UserArgs),
    /// Directory groups and their members.
    Group(groups::GroupArgs),
    /// Service principals and their secrets.
    Sp(service_principals::SpArgs),
    /// The admin account.
    Admin(admin::AdminArgs),
    /// Repository-scoped tokens.
    Token(tokens::TokenArgs),
    /// Scope maps for repository tokens.
    ScopeMap(scope_maps::ScopeMapArgs),
    /// Role assignments.
    RoleAssignment(role_assignments::RoleAssignmentArgs),
    /// Network rules.
    NetworkRule(network_rules::NetworkRuleArgs),
    /// Registry settings.
    Registry(registry::RegistryArgs),
    /// Repositories, tags and manifests.
    Repository(repositories::RepositoryArgs),
    /// Collect garbage: blob links and blobs no manifest references.
    Gc(gc::GcArgs),
    /// Audit events: login attempts, repository operations, and why a
    /// request was refused.
    Logs(logs::LogsArgs),
    /// A kubelet image credential provider plugin
    /// (credentialprovider.kubelet.k8s.io/v1): a CredentialProviderRequest
    /// on stdin, a CredentialProviderResponse with a short-lived registry
    /// token on stdout.
    KubeletCredentialProvider(kube::provider::ProviderArgs),
    /// Kubernetes image pull secrets.
    PullSecret(kube::pull_secret::PullSecretArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
}

/// `berth credential-helper <verb>`.
#[derive(Args, Debug)]
pub struct HelperArgs {
    /// get, store, erase, list or version.
    #[arg(value_enum)]
    pub verb: cred_helper::Verb,
}

/// `berth completion <shell>`.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Run a client command. `root` builds the whole `berth` clap command (for
/// completion scripts).
pub fn run(command: Command, root: impl FnOnce() -> clap::Command) -> ExitCode {
    let result = match command {
        Command::CredentialHelper(h) => return cred_helper::serve(h.verb),
        Command::Completion(c) => {
            let mut cmd = root();
            clap_complete::generate(c.shell, &mut cmd, "berth", &mut std::io::stdout());
            Ok(())
        }
        Command::Logout(a) => login::logout(a),
        other => block_on(other),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn block_on(command: Command) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            Command::Login(a) => login::login(a).await,
            Command::User(a) => users::run(a).await,
            Command::Group(a) => groups::run(a).await,
            Command::Sp(a) => service_principals::run(a).await,
            Command::Admin(a) => admin::run(a).await,
            Command::Token(a) => tokens::run(a).await,
            Command::ScopeMap(a) => scope_maps::run(a).await,
            Command::RoleAssignment(a) => role_assignments::run(a).await,
            Command::NetworkRule(a) => network_rules::run(a).await,
            Command::Registry(a) => registry::run(a).await,
            Command::Repository(a) => repositories::run(a).await,
            Command::Gc(a) => gc::run(a).await,
            Command::Logs(a) => logs::run(a).await,
            Command::KubeletCredentialProvider(a) => kube::provider::run(a).await,
            Command::PullSecret(a) => kube::pull_secret::run(a).await,
            Command::Logout(_) | Command::CredentialHelper(_) | Command::Completion(_) => Ok(()),
        }
    })
}

/// When the binary runs as `docker-credential-berth VERB`: serve the
/// helper protocol and return the exit status; `None` for any other name.
pub fn run_as_credential_helper() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    let argv0 = args.next()?;
    let name = std::path::Path::new(&argv0)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    if !name.starts_with("docker-credential-") {
        return None;
    }
    let verb = args
        .next()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let verb = match verb.as_str() {
        "get" => cred_helper::Verb::Get,
        "store" => cred_helper::Verb::Store,
        "erase" => cred_helper::Verb::Erase,
        "list" => cred_helper::Verb::List,
        "version" => cred_helper::Verb::Version,
        other => {
            println!(
                "unknown credential helper verb '{other}': use get, store, erase, list or version"
            );
            return Some(ExitCode::FAILURE);
        }
    };
    Some(cred_helper::serve(verb))
}
