//! The one table of check-health codes.
//!
//! Every finding `berth check-health` prints names a code from [`CODES`];
//! the "check-health codes" section of `docs/errors.md` is generated from
//! the same table by [`markdown`], and a unit test fails when the two
//! differ, so the CLI output and the documentation cannot drift.
//!
//! Codes follow the cloud registry's names where they exist; the others are
//! berth's own. Never rename a code (scripts match on them); add new ones.

use crate::report::Status;

/// One diagnosable problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// Stable identifier, e.g. `CONNECTIVITY_DNS_ERROR`.
    pub code: &'static str,
    /// Usual severity. A check may report a code one step milder when the
    /// problem does not block this machine (the meaning says when).
    pub severity: Status,
    /// What the code means.
    pub meaning: &'static str,
    /// What to do about it.
    pub fix: &'static str,
}

const fn code(
    code: &'static str,
    severity: Status,
    meaning: &'static str,
    fix: &'static str,
) -> CodeInfo {
    CodeInfo {
        code,
        severity,
        meaning,
        fix,
    }
}

use Status::{Error as E, Warning as W};

/// Every code, in the order the checks run.
pub static CODES: &[CodeInfo] = &[
    code(
        "DOCKER_COMMAND_ERROR",
        E,
        "The docker client is not on PATH. A warning when another registry client (podman, skopeo, oras) is present.",
        "Install Docker (or podman, skopeo or oras) and make sure its directory is on PATH.",
    ),
    code(
        "DOCKER_DAEMON_ERROR",
        E,
        "The docker client cannot reach its daemon. A warning when another registry client is present.",
        "Start or restart the docker daemon (`systemctl start docker`) and check that your user may use its socket (docker group, `DOCKER_HOST`).",
    ),
    code(
        "DOCKER_VERSION_ERROR",
        E,
        "The docker client version cannot be read or is older than 18.03, the oldest client that speaks the token flow berth needs.",
        "Check `docker version` by hand and update Docker to 18.03 or newer.",
    ),
    code(
        "PODMAN_COMMAND_WARNING",
        W,
        "podman is not on PATH or does not report its version.",
        "Install podman if you use it; nothing to do otherwise.",
    ),
    code(
        "SKOPEO_COMMAND_WARNING",
        W,
        "skopeo is not on PATH or does not report its version.",
        "Install skopeo if you use it; nothing to do otherwise.",
    ),
    code(
        "HELM_COMMAND_ERROR",
        W,
        "helm is not on PATH or does not report its version (charts cannot be pushed from this machine).",
        "Install helm 3.8 or newer (OCI support) if you push charts; nothing to do otherwise.",
    ),
    code(
        "ORAS_COMMAND_WARNING",
        W,
        "oras is not on PATH or does not report its version.",
        "Install oras if you push artifacts; nothing to do otherwise.",
    ),
    code(
        "LOGIN_SERVER_ERROR",
        E,
        "The login server is missing or not spelled as clients must spell it (uppercase letters, a path, an empty host or port).",
        "Give the registry's login server in lowercase as `host[:port]` (a scheme is allowed), e.g. `berth check-health registry.example.com`.",
    ),
    code(
        "CONFIG_JSON_ERROR",
        E,
        "docker's config.json ($DOCKER_CONFIG/config.json or ~/.docker/config.json) cannot be read or is not valid JSON; every client that reads it fails.",
        "Fix or remove the file, then run `berth login` again.",
    ),
    code(
        "CREDENTIAL_KEY_MISMATCH",
        W,
        "config.json holds credentials for this registry under another host string (with or without port, scheme or trailing slash); clients look up the exact string, so they send no credentials (\"Login Succeeded\", then \"unauthorized\").",
        "Log in again with exactly the name you push to (`berth login <login-server>`), and `docker logout` the other spelling.",
    ),
    code(
        "CREDENTIAL_HELPER_MISSING",
        E,
        "config.json routes this registry to a credential helper (`credsStore` or `credHelpers`) whose `docker-credential-<name>` program is not on PATH; every client fails to read credentials.",
        "Install the helper, or remove the `credsStore`/`credHelpers` entry from config.json and log in again.",
    ),
    code(
        "CREDENTIAL_HELPER_ERROR",
        E,
        "The credential helper for this registry failed or answered something that is not the docker credential-helper JSON.",
        "Run `docker-credential-<name> get` by hand with the login server on stdin, fix the helper, or log in again.",
    ),
    code(
        "CREDENTIALS_MISSING",
        W,
        "No credentials for this login server: neither `--username/--password` nor stored ones. Only anonymous pull can work.",
        "Run `berth login <login-server>` (or pass `--username/--password`).",
    ),
    code(
        "CREDENTIAL_EXPIRING_SOON",
        W,
        "The stored registry refresh token expires within 7 days or has expired, or (with `--service-principal`, when the API shows it) every client secret of the service principal expires within 7 days; clients will be refused from then on, possibly in the middle of a long push.",
        "Run `berth login <login-server>` again before it expires; for unattended machines use a service principal or a repository-scoped token.",
    ),
    code(
        "CONNECTIVITY_DNS_ERROR",
        E,
        "The login server's host name does not resolve.",
        "Check the spelling of the login server, this machine's network and its DNS servers.",
    ),
    code(
        "CONNECTIVITY_TCP_ERROR",
        E,
        "No TCP connection to the login server's port (refused or timed out).",
        "Check the port, that the registry runs, and any firewall between this machine and the registry.",
    ),
    code(
        "CONNECTIVITY_SSL_ERROR",
        E,
        "The TLS handshake failed: certificate not trusted or self-signed, issued for another host name, expired, or replaced by a TLS-intercepting proxy; or a non-loopback registry without TLS.",
        "Install the registry's CA on this machine (and for docker in /etc/docker/certs.d/<host>/ca.crt), or pass `--ca-cert`; fix the certificate's names or validity; ask for the proxy's CA or an exception.",
    ),
    code(
        "PLAIN_HTTP_WARNING",
        W,
        "The registry serves plain HTTP on a loopback address; clients accept that only for localhost, and credentials travel unencrypted.",
        "Use TLS (`berth serve --tls-cert/--tls-key` or `--tls-self-signed`) for anything but local experiments.",
    ),
    code(
        "CONNECTIVITY_FORBIDDEN_ERROR",
        E,
        "`GET /v2/` answered 403: the registry's network rules do not allow this client's IP address.",
        "Ask the registry administrator to allow the IP the message names (`berth network-rule add --ip-address <ip>`).",
    ),
    code(
        "CONNECTIVITY_CHALLENGE_ERROR",
        E,
        "`GET /v2/` did not answer 401 with a `WWW-Authenticate` challenge: not a registry, or a proxy answering for it.",
        "Check that the login server points at berth (and not at a proxy or web server) and that the registry is up.",
    ),
    code(
        "CONNECTIVITY_WWW_AUTHENTICATE_ERROR",
        E,
        "The `WWW-Authenticate` challenge is malformed: not `Bearer`, no `realm` or `service`, or a realm that is not an http(s) URL.",
        "Fix the registry's `--realm` setting, or the proxy rewriting the header.",
    ),
    code(
        "STORAGE_FULL_ERROR",
        E,
        "The registry reports that its storage is full (`GET /healthz` starts with `storage full`): pushes and other writes are refused with 507 Insufficient Storage; pulls still work.",
        "Operator: free space or grow the volume (or quota) of the registry's data directory (see docs/errors.md, \"Storage full\"); pushes work again without a restart.",
    ),
    code(
        "REALM_UNREACHABLE_ERROR",
        E,
        "The challenge's realm (the token endpoint) names a host, port or scheme this machine cannot reach, typically an internal address advertised behind a reverse proxy.",
        "Set `berth serve --realm https://<public login server>/oauth2/token` (or `BERTH_REALM`) to the URL clients use.",
    ),
    code(
        "REALM_MISMATCH_WARNING",
        W,
        "The realm is on another host, port or scheme than the login server, but reachable; some clients refuse to send credentials to another host.",
        "Unless a separate token service is intended, set `--realm` to the login server's own `/oauth2/token`.",
    ),
    code(
        "CLOCK_SKEW_ERROR",
        W,
        "This machine's clock differs from the registry's `Date` by more than 60 seconds; token lifetimes seen here are off by that much and tokens may look not yet valid or expired.",
        "Synchronise the clocks of this machine and the registry (NTP, `timedatectl set-ntp true`).",
    ),
    code(
        "CONNECTIVITY_AAD_LOGIN_ERROR",
        E,
        "The login with the given username/password, service principal or token password was refused (the message is the registry's; it never says whether the name exists).",
        "Check the username and password (`berth login` again), whether the password, client secret or repository token has expired or been disabled, and ask the administrator to look up the refusal in the audit log.",
    ),
    code(
        "CONNECTIVITY_REFRESH_TOKEN_ERROR",
        E,
        "The registry refused to issue or accept a refresh token: the identity has no role on the registry, or the stored token was revoked (password regenerated, identity disabled) or expired.",
        "Run `berth login <login-server>` again; if that fails too, ask an Owner for a role assignment.",
    ),
    code(
        "CONNECTIVITY_ACCESS_TOKEN_ERROR",
        E,
        "The registry refused to issue an access token, or refused the access token it issued.",
        "Run `berth login <login-server>` again and check the identity's role assignments.",
    ),
    code(
        "CONNECTIVITY_TOOMANYREQUESTS_ERROR",
        E,
        "The registry throttled this client (429) after too many failed logins from this address (for this identity, or for any).",
        "Wait for the time in `Retry-After`, then fix the credentials of the client that keeps failing.",
    ),
    code(
        "STALE_CREDENTIALS_ANONYMOUS_PULL",
        W,
        "Anonymous pull is on, but the stored credentials are refused; clients send them anyway. berth then serves pull-only requests with exactly anonymous access (the failed login is still audited and throttled), but `docker login`, pushes and anything beyond anonymous pull fail until the credentials are fixed or removed.",
        "Log out (`docker logout <login-server>`) to pull anonymously, or log in again.",
    ),
    code(
        "PERMISSION_PULL_ERROR",
        E,
        "With `--repository`: the caller may not pull from the repository; the message names the missing role or scope-map action.",
        "Ask an Owner for AcrPull (or Reader, AcrPush, Contributor) on the repository, or add `content/read` to the token's scope map.",
    ),
    code(
        "PERMISSION_PUSH_ERROR",
        W,
        "With `--repository`: the caller may not push to the repository; the message names the missing role or scope-map action.",
        "Ask an Owner for AcrPush (or Contributor) on the repository, or add `content/write` to the token's scope map.",
    ),
    code(
        "PERMISSION_DELETE_ERROR",
        W,
        "With `--repository`: the caller may not delete in the repository; the message names the missing role or scope-map action.",
        "Ask an Owner for AcrDelete (or Contributor) on the repository, or add `content/delete` to the token's scope map.",
    ),
    // Refusals that name the fix (issue 13): one block, in check order.
    code(
        "REFRESH_TOKEN_USERNAME_ERROR",
        E,
        "A registry refresh token is used as the password with a username other than `00000000-0000-0000-0000-000000000000`; the registry refuses it (it tells from the password alone, whatever the username).",
        "Log in with the username `00000000-0000-0000-0000-000000000000` and the refresh token as password (`docker login -u 00000000-0000-0000-0000-000000000000 --password-stdin <login-server>`), or let `berth login --expose-token` print both.",
    ),
    code(
        "MANAGEMENT_ROLE_MISSING",
        W,
        "The identity logs in, but holds no registry-wide role that allows the management API: `berth` management commands and `/api/v1` answer 403 (reading needs Reader, Contributor or Owner; changes need Contributor or Owner; role assignments need Owner).",
        "Ask an Owner for a registry-wide role: `berth role-assignment create --assignee <you> --role Reader` to read, Contributor to change.",
    ),
    code(
        "ACCESS_CHANGED_RELOGIN",
        W,
        "With `--access-token`: the token was refused an action when it was issued that the identity may do now (a role assignment or scope-map rule was added since). The registry refuses the old token for it; a new token carries the new access.",
        "Log in again (`docker login`, `berth login`) or request a new token for the scope; clients that follow the registry's `insufficient_scope` challenge do this by themselves.",
    ),
    // Kubernetes pulls (`--pull-secret`, `--kubelet-provider-config`).
    code(
        "PULL_IMAGE_INVALID",
        E,
        "With `--pull-secret` or `--kubelet-provider-config`: `--image` is not an image reference (`host[:port]/repository[:tag|@digest]`, lowercase, no scheme), or it names another registry than the login server checked.",
        "Give the image exactly as the pod spec names it, on this login server, e.g. `--image 127.0.0.1:5000/team/app:1.0`.",
    ),
    code(
        "PULL_SECRET_INVALID",
        E,
        "The pull secret cannot be used: not YAML/JSON, not a Secret of type `kubernetes.io/dockerconfigjson` (or a bare `.dockerconfigjson`), no `data[\".dockerconfigjson\"]`, bad base64, or an `auths` entry whose `auth` is not base64(`username:password`). kubelet ignores such a secret.",
        "Recreate it: `berth pull-secret create --name <name> --token <token> | kubectl apply -f -`.",
    ),
    code(
        "PULL_SECRET_KEY_MISMATCH",
        E,
        "No key of the secret's `auths` matches the image the way kubelet matches it (same port — a key without a port matches no image with one —, same number of host parts with globs per part, the key's path a prefix of the image's), so kubelet pulls without credentials and the pod fails with ImagePullBackOff (`unauthorized`).",
        "Key the secret by the login server exactly as images name it, `host[:port]` (what `berth pull-secret create` writes).",
    ),
    code(
        "PULL_SECRET_KEY_SCHEME",
        W,
        "The matching key carries a scheme or a `/v1/`, `/v2/` path that kubelet drops before matching: it works, but the scheme chooses nothing (`http://` does not make the runtime pull over plain HTTP; that is the runtime's registry configuration).",
        "Key the secret by the bare login server, `host[:port]`.",
    ),
    code(
        "KUBELET_PROVIDER_CONFIG_INVALID",
        E,
        "The CredentialProviderConfig cannot be read, or kubelet would refuse it: not `kind: CredentialProviderConfig` of `kubelet.config.k8s.io`, no providers, a provider without `name`, `matchImages` or `defaultCacheDuration`, or an `apiVersion` other than `credentialprovider.kubelet.k8s.io/v1`.",
        "Fix the file along docs/kubernetes.md; kubelet does not start with an invalid `--image-credential-provider-config`.",
    ),
    code(
        "KUBELET_PROVIDER_NOT_MATCHED",
        E,
        "No provider's `matchImages` matches the image, so kubelet never asks a provider for it (the message says, per pattern, which rule fails: port, host parts, path).",
        "Add the login server as images name it (`host[:port]`, no scheme) to `matchImages`.",
    ),
    code(
        "KUBELET_PROVIDER_EXEC_ERROR",
        E,
        "The provider could not be run, exited non-zero (its stderr is shown: e.g. a refused login or an unreachable registry) or took longer than kubelet's 60 s; kubelet pulls without its credentials.",
        "Put the executable named `name` into kubelet's `--image-credential-provider-bin-dir` (pass the same directory as `--kubelet-provider-bin-dir`) and fix what its stderr says (client id, secret or token file, login server).",
    ),
    code(
        "KUBELET_PROVIDER_RESPONSE_INVALID",
        E,
        "The provider's stdout is not a CredentialProviderResponse kubelet accepts: not JSON, another `apiVersion` than the configured one, another `kind`, a `cacheKeyType` other than Image/Registry/Global, or a `cacheDuration` that is not a duration.",
        "Fix or update the provider; `berth kubelet-credential-provider` answers `credentialprovider.kubelet.k8s.io/v1`.",
    ),
    code(
        "KUBELET_PROVIDER_NO_AUTH",
        E,
        "The provider answered, but none of its `auth` keys matches the image (an empty `auth`: it is not configured for this login server).",
        "Configure the provider for this login server (`--login-server` / `BERTH_LOGIN_SERVER` in the config's `args` or `env`).",
    ),
    code(
        "KUBELET_PROVIDER_CACHE_TOO_LONG",
        W,
        "kubelet would keep the provider's credential (its `cacheDuration`, else `defaultCacheDuration`) for as long as or longer than the credential is valid, so pulls near the end of the cache time fail with `unauthorized`.",
        "Have the provider answer a `cacheDuration` below the credential's lifetime (berth's provider does), or lower `defaultCacheDuration`.",
    ),
    code(
        "PULL_LOGIN_ERROR",
        E,
        "The registry refused the credential kubelet would send (wrong password, unknown name, revoked token), or the login could not be sent.",
        "Create a new pull secret (`berth pull-secret create`) or fix the provider's identity; an administrator finds the precise reason in `berth logs login --failures`.",
    ),
    code(
        "PULL_CREDENTIAL_EXPIRED",
        E,
        "The credential's password, client secret or token has expired; every pull with it fails with `unauthorized`.",
        "Create a new pull secret (`berth pull-secret create --expires-in <days>`) and apply it; pods pick it up on their next pull.",
    ),
    code(
        "PULL_CREDENTIAL_DISABLED",
        E,
        "The credential belongs to a disabled repository token or identity.",
        "Enable it (`berth token update --name <token> --status enabled`) or create a pull secret for another token.",
    ),
    code(
        "PULL_PERMISSION_ERROR",
        E,
        "The credential logs in but may not pull this repository; the message names the missing role or scope-map action (e.g. the token's scope map has no rule for the repository).",
        "Add `repositories/<repository>/content/read` to the token's scope map (`berth scope-map update`), or give the identity AcrPull on the repository.",
    ),
    code(
        "PULL_IMAGE_NOT_FOUND",
        E,
        "The credential may pull, but the repository or the tag/digest does not exist (`NAME_UNKNOWN`, `MANIFEST_UNKNOWN`): the pod fails with ErrImagePull `not found`.",
        "Check the image name and tag in the pod spec against `berth repository show-tags --repository <repository>`, or push the image.",
    ),
    code(
        "PULL_CREDENTIAL_EXPIRING",
        W,
        "With `--pull-secret`: the secret's password expires within 7 days (from its `berth.io/expires-at` annotation, or a refresh token's `exp`); pods that pull after that fail with ImagePullBackOff.",
        "Create a new pull secret now (`berth pull-secret create`) and apply it before the old one expires.",
    ),
    code(
        "CHECK_SKIPPED",
        W,
        "With `--ignore-errors`: this check could not run because an earlier one failed.",
        "Fix the first error of the report and run check-health again.",
    ),
];

/// The table entry of `code`.
///
/// Every code the checks use is in [`CODES`] (a unit test walks the
/// sources), so a miss is a programming error reported as a generic entry
/// rather than a panic.
pub fn info(code: &str) -> &'static CodeInfo {
    static UNKNOWN: CodeInfo = CodeInfo {
        code: "UNKNOWN",
        severity: Status::Error,
        meaning: "unclassified problem",
        fix: "report this as a bug in berth check-health",
    };
    CODES.iter().find(|c| c.code == code).unwrap_or(&UNKNOWN)
}

/// Start marker of the generated section in `docs/errors.md`.
pub const DOCS_BEGIN: &str = "<!-- check-health codes: generated, do not edit -->";
/// End marker of the generated section in `docs/errors.md`.
pub const DOCS_END: &str = "<!-- end check-health codes -->";

/// The generated Markdown table (without the markers).
pub fn markdown() -> String {
    let mut out = String::from("| code | severity | meaning | fix |\n|---|---|---|---|\n");
    for c in CODES {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            c.code,
            c.severity.as_str(),
            c.meaning.replace('|', "\\|"),
            c.fix.replace('|', "\\|")
        ));
    }
    out
}

/// `doc` with the text between [`DOCS_BEGIN`] and [`DOCS_END`] replaced by
/// [`markdown`]; `None` when the markers are missing.
pub fn splice_docs(doc: &str) -> Option<String> {
    let start = doc.find(DOCS_BEGIN)? + DOCS_BEGIN.len();
    let end = start + doc[start..].find(DOCS_END)?;
    Some(format!("{}\n{}{}", &doc[..start], markdown(), &doc[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_md() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md")
    }

    /// `docs/errors.md` holds exactly the generated table. Regenerate with
    /// `UPDATE_DOCS=1 cargo test -p berth-health`.
    #[test]
    fn docs_errors_md_is_generated_from_the_table() {
        let path = errors_md();
        let doc = std::fs::read_to_string(&path).expect("read docs/errors.md");
        let want = splice_docs(&doc).expect("docs/errors.md has the check-health markers");
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &want).expect("write docs/errors.md");
            return;
        }
        assert!(
            doc == want,
            "docs/errors.md's check-health section is stale: run UPDATE_DOCS=1 cargo test -p berth-health"
        );
    }

    #[test]
    fn codes_are_unique_and_cover_the_issue() {
        let mut seen = std::collections::HashSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "duplicate {}", c.code);
            assert!(c
                .code
                .chars()
                .all(|ch| ch.is_ascii_uppercase() || ch == '_'));
        }
        for required in [
            "DOCKER_COMMAND_ERROR",
            "DOCKER_DAEMON_ERROR",
            "DOCKER_VERSION_ERROR",
            "HELM_COMMAND_ERROR",
            "CONNECTIVITY_DNS_ERROR",
            "CONNECTIVITY_SSL_ERROR",
            "CONNECTIVITY_CHALLENGE_ERROR",
            "CONNECTIVITY_FORBIDDEN_ERROR",
            "CONNECTIVITY_AAD_LOGIN_ERROR",
            "CONNECTIVITY_WWW_AUTHENTICATE_ERROR",
            "CONNECTIVITY_REFRESH_TOKEN_ERROR",
            "CONNECTIVITY_ACCESS_TOKEN_ERROR",
            "CONNECTIVITY_TOOMANYREQUESTS_ERROR",
            "LOGIN_SERVER_ERROR",
        ] {
            assert!(seen.contains(required), "{required} missing");
        }
    }

    /// Every code-like string literal (`"UPPER_CASE"`) the checks use is in
    /// the table.
    #[test]
    fn every_code_used_in_the_sources_is_in_the_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/checks");
        let mut found = 0;
        for entry in std::fs::read_dir(&dir).expect("read src/checks") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read source");
            for (i, piece) in text.split('"').enumerate() {
                let code_like = i % 2 == 1
                    && piece.len() >= 8
                    && piece.contains('_')
                    && piece.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                if code_like {
                    found += 1;
                    assert!(
                        CODES.iter().any(|c| c.code == piece),
                        "{piece} used in {} is not in CODES",
                        path.display()
                    );
                }
            }
        }
        assert!(found > 20, "the scan found the checks' codes ({found})");
    }
}
