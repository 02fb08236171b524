//! `--kubelet-provider-config FILE`: the kubelet image credential
//! providers, run exactly as kubelet runs them — the providers whose
//! `matchImages` match the image, `<bin dir>/<name>` with the config's
//! `args`, kubelet's environment plus the config's `env`, a
//! `CredentialProviderRequest` on stdin, one minute to answer — and their
//! answers checked as kubelet checks them (apiVersion, kind,
//! `cacheKeyType`, `cacheDuration`, an `auth` key matching the image).
//! The credential kubelet would use goes on to the login step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use berth_cli::docker_config::TOKEN_USERNAME;
use berth_cli::kube::api::{
    format_go_duration, parse_go_duration, AuthConfig, CredentialProvider,
    CredentialProviderConfig, CredentialProviderRequest, CredentialProviderResponse,
};
use berth_cli::kube::matching;
use tokio::io::AsyncWriteExt as _;

use crate::context::Ctx;
use crate::dockerconfig::from_user_secret;
use crate::report::Finding;
use crate::token::human_duration;

const CONFIG: &str = "provider config";
const EXEC: &str = "provider run";
const ANSWER: &str = "provider answer";
/// kubelet's time limit for one plugin run.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// Read the config, run the matching providers, check their answers.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let Some(image) = ctx.image.clone() else {
        return vec![super::skipped(CONFIG, "no image")];
    };
    let path = ctx.args.kubelet_provider_config.clone().unwrap_or_default();
    let config = match std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|t| CredentialProviderConfig::parse(&t))
    {
        Ok(c) => c,
        Err(e) => {
            ctx.blocked = true;
            return vec![Finding::problem(
                CONFIG,
                "KUBELET_PROVIDER_CONFIG_INVALID",
                format!("{}: {e}", path.display()),
            )];
        }
    };
    let target = image.repo_to_pull();
    let matching: Vec<&CredentialProvider> = config
        .providers
        .iter()
        .filter(|p| {
            p.match_images
                .iter()
                .any(|m| matching::urls_match(m, &target))
        })
        .collect();
    if matching.is_empty() {
        let t = target.as_str();
        let why: Vec<String> = config
            .providers
            .iter()
            .flat_map(|p| {
                p.match_images
                    .iter()
                    .map(move |m| match matching::match_str(m, t) {
                        Err(e) => format!("{}: {m:?}: {e}", p.name),
                        Ok(()) => format!("{}: {m:?} matches", p.name),
                    })
            })
            .collect();
        ctx.blocked = true;
        return vec![Finding::problem(
            CONFIG,
            "KUBELET_PROVIDER_NOT_MATCHED",
            format!(
                "no provider's matchImages matches {target:?}, so kubelet asks none: {}",
                why.join("; ")
            ),
        )];
    }
    let names: Vec<&str> = matching.iter().map(|p| p.name.as_str()).collect();
    let mut out = vec![Finding::ok(
        CONFIG,
        format!(
            "{}: {target:?} matches provider(s) {}",
            path.display(),
            names.join(", ")
        ),
    )];
    // kubelet merges the answers; for the same key the earlier provider wins.
    let mut merged: BTreeMap<String, (AuthConfig, String, u64)> = BTreeMap::new();
    for p in matching {
        let response = match run(ctx, p, &target).await {
            Ok(r) => r,
            Err(f) => {
                ctx.blocked = true;
                out.push(*f);
                return out;
            }
        };
        let cache = match response.cache_duration.as_deref() {
            Some(d) => parse_go_duration(d).unwrap_or(0),
            None => p
                .default_cache_duration
                .as_deref()
                .and_then(parse_go_duration)
                .unwrap_or(0),
        };
        out.push(Finding::ok(
            EXEC,
            format!(
                "{} answered: cacheKeyType {}, cacheDuration {}, {} auth key(s)",
                p.name,
                response.cache_key_type,
                response.cache_duration.clone().unwrap_or_else(|| format!(
                    "(none: defaultCacheDuration {})",
                    format_go_duration(cache)
                )),
                response.auth.len()
            ),
        ));
        for (k, v) in response.auth {
            merged.entry(k).or_insert((v, p.name.clone(), cache));
        }
    }
    let matched = matching::lookup(merged.keys().map(String::as_str), &target);
    let Some((key, (auth, provider, cache))) = matched
        .first()
        .and_then(|k| merged.get(*k).map(|v| (k.to_string(), v.clone())))
    else {
        ctx.blocked = true;
        let keys: Vec<String> = merged.keys().map(|k| format!("{k:?}")).collect();
        let hint = if keys.is_empty() {
            "the plugin answered an empty auth: it is not configured for this login server (check --login-server / BERTH_LOGIN_SERVER in the config's args or env)".to_string()
        } else {
            format!("keys {}", keys.join(", "))
        };
        out.push(Finding::problem(
            ANSWER,
            "KUBELET_PROVIDER_NO_AUTH",
            format!("no credentials for {target:?}: {hint}"),
        ));
        return out;
    };
    let lifetime = (auth.username == TOKEN_USERNAME)
        .then(|| crate::token::expiry(&auth.password))
        .flatten()
        .map(|exp| exp.saturating_sub(berth_cli::session::now()));
    match lifetime {
        Some(left) if cache >= left => out.push(Finding::problem(
            ANSWER,
            "KUBELET_PROVIDER_CACHE_TOO_LONG",
            format!(
                "{provider}: kubelet keeps the credential of key {key:?} for {} but it is valid for only {}",
                human_duration(cache),
                human_duration(left)
            ),
        )),
        Some(left) => out.push(Finding::ok(
            ANSWER,
            format!(
                "{provider}: key {key:?} matches; cached {} of the credential's {}",
                human_duration(cache),
                human_duration(left)
            ),
        )),
        None => out.push(Finding::ok(
            ANSWER,
            format!("{provider}: key {key:?} matches; cached {}", human_duration(cache)),
        )),
    }
    let credential = from_user_secret(&auth.username, &auth.password);
    ctx.credential = Some((credential, format!("provider {provider} key {key:?}")));
    out
}

/// Where kubelet would find the executable.
fn executable(ctx: &Ctx, name: &str) -> Result<PathBuf, String> {
    if let Some(dir) = &ctx.args.kubelet_provider_bin_dir {
        let p = dir.join(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "{} does not exist: kubelet looks for the provider named {name:?} in its --image-credential-provider-bin-dir",
                p.display()
            ))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("{name:?} is not on PATH; pass --kubelet-provider-bin-dir (kubelet's --image-credential-provider-bin-dir)")
        })
}

/// Run one provider as kubelet does; its checked answer.
async fn run(
    ctx: &Ctx,
    p: &CredentialProvider,
    image: &str,
) -> Result<CredentialProviderResponse, Box<Finding>> {
    let fail = |m: String| Box::new(Finding::problem(EXEC, "KUBELET_PROVIDER_EXEC_ERROR", m));
    let bad = |m: String| {
        Box::new(Finding::problem(
            ANSWER,
            "KUBELET_PROVIDER_RESPONSE_INVALID",
            format!("{}: {m}", p.name),
        ))
    };
    let program = executable(ctx, &p.name).map_err(fail)?;
    let request = CredentialProviderRequest {
        api_version: p.api_version.clone(),
        kind: "CredentialProviderRequest".into(),
        image: image.to_string(),
        service_account_token: None,
        service_account_annotations: BTreeMap::new(),
    };
    let body = serde_json::to_vec(&request).map_err(|e| fail(e.to_string()))?;
    let mut child = tokio::process::Command::new(&program)
        .args(&p.args)
        .envs(p.env.iter().map(|e| (e.name.as_str(), e.value.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body).await;
    }
    let output = tokio::time::timeout(EXEC_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            fail(format!(
                "{} did not answer within 60 s (kubelet's limit)",
                p.name
            ))
        })?
        .map_err(|e| fail(format!("{}: {e}", p.name)))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr: String = stderr.trim().chars().take(600).collect();
        return Err(fail(format!(
            "{} exited with {}: {stderr}",
            p.name, output.status
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        bad(format!(
            "stdout is not a JSON CredentialProviderResponse: {e}"
        ))
    })?;
    let response: CredentialProviderResponse = serde_json::from_value(v)
        .map_err(|e| bad(format!("not a CredentialProviderResponse: {e}")))?;
    if response.api_version != p.api_version {
        return Err(bad(format!(
            "apiVersion {:?} is not the configured {:?}; kubelet rejects the answer",
            response.api_version, p.api_version
        )));
    }
    if response.kind != "CredentialProviderResponse" {
        return Err(bad(format!(
            "kind {:?} is not CredentialProviderResponse",
            response.kind
        )));
    }
    if !matches!(
        response.cache_key_type.as_str(),
        "Image" | "Registry" | "Global"
    ) {
        return Err(bad(format!(
            "cacheKeyType {:?} is not Image, Registry or Global; kubelet ignores the answer",
            response.cache_key_type
        )));
    }
    if let Some(d) = &response.cache_duration {
        if parse_go_duration(d).is_none() {
            return Err(bad(format!("cacheDuration {d:?} is not a duration")));
        }
    }
    Ok(response)
}
