//! The Kubernetes documents berth reads and writes: the kubelet image
//! credential provider API (`credentialprovider.kubelet.k8s.io/v1`), the
//! kubelet's `CredentialProviderConfig` (`kubelet.config.k8s.io/v1`),
//! `kubernetes.io/dockerconfigjson` Secrets, and Go's duration syntax
//! (`metav1.Duration`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The provider API version berth speaks.
pub const PROVIDER_API_V1: &str = "credentialprovider.kubelet.k8s.io/v1";
/// Older provider API versions with the same schema, answered in kind.
pub const PROVIDER_API_OLDER: &[&str] = &[
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];
/// The kubelet configuration API version of `CredentialProviderConfig`.
pub const KUBELET_CONFIG_V1: &str = "kubelet.config.k8s.io/v1";
/// The Secret type of image pull secrets.
pub const DOCKERCONFIGJSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// The data key of such a Secret.
pub const DOCKERCONFIGJSON_KEY: &str = ".dockerconfigjson";
/// Annotation: when the secret's password stops working (RFC 3339).
pub const ANNOTATION_EXPIRES_AT: &str = "berth.io/expires-at";
/// Annotation: the login server the secret was made for.
pub const ANNOTATION_LOGIN_SERVER: &str = "berth.io/login-server";
/// Annotation: which berth credential the secret holds.
pub const ANNOTATION_CREDENTIAL: &str = "berth.io/credential";
/// Service-account annotation naming the workload identity's client id
/// (with `tokenAttributes`).
pub const ANNOTATION_CLIENT_ID: &str = "berth.io/client-id";

/// What kubelet writes on the plugin's stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderRequest {
    /// `credentialprovider.kubelet.k8s.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `CredentialProviderRequest`.
    #[serde(default)]
    pub kind: String,
    /// The image being pulled (kubelet sends the repository without tag).
    pub image: String,
    /// The pod's service-account token, when the provider's config has
    /// `tokenAttributes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_token: Option<String>,
    /// Annotations of that service account kubelet was asked to pass on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_account_annotations: BTreeMap<String, String>,
}

/// What the plugin writes on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderResponse {
    /// `CredentialProviderResponse`.
    #[serde(default)]
    pub kind: String,
    /// The request's apiVersion.
    #[serde(default)]
    pub api_version: String,
    /// `Image`, `Registry` or `Global`.
    #[serde(default)]
    pub cache_key_type: String,
    /// Go duration; absent: kubelet uses `defaultCacheDuration`; `0s`:
    /// not cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_duration: Option<String>,
    /// Credentials by match-image key; empty when the plugin has none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub auth: BTreeMap<String, AuthConfig>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, AuthConfig>, D::Error> {
    Ok(Option::<BTreeMap<String, AuthConfig>>::deserialize(d)?.unwrap_or_default())
}

/// A username and password for a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// Username (the null GUID for a berth refresh token).
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
}

/// kubelet's `--image-credential-provider-config` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderConfig {
    /// `kubelet.config.k8s.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `CredentialProviderConfig`.
    #[serde(default)]
    pub kind: String,
    /// The plugins.
    #[serde(default)]
    pub providers: Vec<CredentialProvider>,
}

/// One plugin of a [`CredentialProviderConfig`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProvider {
    /// The executable's name in kubelet's plugin directory.
    #[serde(default)]
    pub name: String,
    /// Patterns of images the plugin is asked about.
    #[serde(default)]
    pub match_images: Vec<String>,
    /// Go duration used when the response has no `cacheDuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_cache_duration: Option<String>,
    /// The request/response API version.
    #[serde(default)]
    pub api_version: String,
    /// Arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment added to kubelet's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<ExecEnvVar>,
    /// Service-account token settings (kubelet 1.33+), kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_attributes: Option<serde_json::Value>,
}

/// `name=value` for a plugin's environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecEnvVar {
    /// Variable name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

impl CredentialProviderConfig {
    /// Parse a config file (YAML or JSON, as kubelet accepts) and check
    /// what kubelet validates at start.
    pub fn parse(text: &str) -> Result<CredentialProviderConfig, String> {
        let c: CredentialProviderConfig = serde_yaml_ng::from_str(text)
            .map_err(|e| format!("not a CredentialProviderConfig: {e}"))?;
        if c.kind != "CredentialProviderConfig" {
            return Err(format!(
                "kind is {:?}, not CredentialProviderConfig",
                c.kind
            ));
        }
        if c.api_version != KUBELET_CONFIG_V1
            && !c.api_version.starts_with("kubelet.config.k8s.io/")
        {
            return Err(format!(
                "apiVersion is {:?}, not {KUBELET_CONFIG_V1}",
                c.api_version
            ));
        }
        if c.providers.is_empty() {
            return Err("no providers".into());
        }
        for p in &c.providers {
            let who = format!("provider {:?}", p.name);
            if p.name.is_empty() || p.name.contains('/') || p.name == "." || p.name == ".." {
                return Err(format!("{who}: name must be an executable's file name"));
            }
            if p.match_images.is_empty() {
                return Err(format!("{who}: matchImages is required"));
            }
            match p.default_cache_duration.as_deref().map(parse_go_duration) {
                Some(Some(_)) => {}
                Some(None) => return Err(format!("{who}: defaultCacheDuration is not a duration")),
                None => return Err(format!("{who}: defaultCacheDuration is required")),
            }
            if p.api_version != PROVIDER_API_V1
                && !PROVIDER_API_OLDER.contains(&p.api_version.as_str())
            {
                return Err(format!(
                    "{who}: apiVersion {:?} is not {PROVIDER_API_V1}",
                    p.api_version
                ));
            }
        }
        Ok(c)
    }
}

/// A Go duration (`1h30m`, `90s`, `1.5h`, `300ms`) in whole seconds
/// (fractions rounded down); `None` when Go would refuse it.
pub fn parse_go_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut rest = s;
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let value: f64 = num.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += value * scale;
        rest = after;
    }
    Some((nanos / 1e9).floor() as u64)
}

/// Whole seconds as Go prints a `time.Duration` (`2h15m0s`, `45s`, `0s`).
pub fn format_go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("12h0m0s"), Some(43_200));
        assert_eq!(parse_go_duration("10m"), Some(600));
        assert_eq!(parse_go_duration("1.5h"), Some(5400));
        assert_eq!(parse_go_duration("1500ms"), Some(1));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("5d"), None);
        assert_eq!(parse_go_duration("-1s"), None);
        assert_eq!(format_go_duration(8100), "2h15m0s");
        assert_eq!(format_go_duration(61), "1m1s");
        assert_eq!(format_go_duration(0), "0s");
    }

    #[test]
    fn config_is_validated() {
        let ok = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: berth\n  matchImages: [\"reg.example.com\"]\n  defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  args: [kubelet-credential-provider]\n  env:\n  - name: BERTH_LOGIN_SERVER\n    value: reg.example.com\n";
        let c = CredentialProviderConfig::parse(ok).expect("valid");
        assert_eq!(c.providers[0].env[0].value, "reg.example.com");
        assert!(CredentialProviderConfig::parse(&ok.replace("10m", "ten")).is_err());
        assert!(CredentialProviderConfig::parse(&ok.replace("berth\n", "../berth\n")).is_err());
        assert!(CredentialProviderConfig::parse("kind: Pod").is_err());
        let r: CredentialProviderResponse =
            serde_json::from_str(r#"{"kind":"CredentialProviderResponse","apiVersion":"x","cacheKeyType":"Registry","auth":null}"#)
                .expect("null auth");
        assert!(r.auth.is_empty());
    }
}
