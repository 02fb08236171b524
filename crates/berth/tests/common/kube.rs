//! Kubernetes plumbing for the pull tests: the provider plugin driven the
//! way kubelet drives it, skopeo pulling with the credentials it (or a
//! pull secret) yields, and check-health's JSON findings.
//!
//! [`Kubelet`] does what kubelet's `pluginProvider`/`execPlugin` do with a
//! `CredentialProviderConfig` (kubelet itself is not packaged in Debian,
//! see docs/kubernetes.md): parse the YAML, pick the providers whose
//! `matchImages` match the image, run `<bin dir>/<name> args...` with its
//! own environment plus the config's `env`, write the
//! `CredentialProviderRequest` on stdin (with the pod's service-account
//! token when the provider has `tokenAttributes`), and read stdout.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use super::berth_bin;

/// A kubelet's provider configuration and plugin directory.
pub struct Kubelet {
    /// `--image-credential-provider-bin-dir`.
    pub bin_dir: PathBuf,
    /// `--image-credential-provider-config`.
    pub config_path: PathBuf,
    /// The parsed config.
    pub config: Value,
}

/// What one plugin run gave.
pub struct PluginRun {
    /// Exit status, stdout, stderr.
    pub output: Output,
}

impl PluginRun {
    /// stdout as a CredentialProviderResponse (asserting success).
    pub fn response(&self) -> Value {
        assert!(
            self.output.status.success(),
            "plugin failed ({}): {}",
            self.output.status,
            String::from_utf8_lossy(&self.output.stderr)
        );
        serde_json::from_slice(&self.output.stdout).unwrap_or_else(|e| {
            panic!(
                "plugin stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.output.stdout)
            )
        })
    }

    /// stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

impl Kubelet {
    /// Write `config_yaml` into `dir` and put the berth binary into
    /// `dir/bin` as the executable `berth`.
    pub fn new(dir: &Path, config_yaml: &str) -> Kubelet {
        let bin_dir = dir.join("bin");
        std::fs::create_dir_all(&bin_dir).expect("mkdir bin");
        let exe = bin_dir.join("berth");
        if !exe.exists() {
            std::os::unix::fs::symlink(berth_bin(), &exe).expect("link the provider");
        }
        let config_path = dir.join("credential-provider-config.yaml");
        std::fs::write(&config_path, config_yaml).expect("write config");
        let config: Value = serde_yaml_ng::from_str(config_yaml).expect("config is YAML");
        assert_eq!(config["apiVersion"], "kubelet.config.k8s.io/v1");
        assert_eq!(config["kind"], "CredentialProviderConfig");
        Kubelet {
            bin_dir,
            config_path,
            config,
        }
    }

    /// The providers kubelet would run for `image` (matchImages by
    /// kubelet's `URLsMatchStr`, as berth-cli reproduces it and its unit
    /// tests check against kubelet's own cases).
    pub fn matching(&self, image: &str) -> Vec<Value> {
        self.config["providers"]
            .as_array()
            .expect("providers")
            .iter()
            .filter(|p| {
                p["matchImages"].as_array().is_some_and(|m| {
                    m.iter()
                        .filter_map(Value::as_str)
                        .any(|m| berth_cli::kube::matching::urls_match(m, image))
                })
            })
            .cloned()
            .collect()
    }

    /// Run `provider` for `image` exactly as kubelet's `execPlugin` does;
    /// `sa` is the pod's service-account token and annotations (sent only
    /// when the provider has `tokenAttributes`).
    pub fn exec(&self, provider: &Value, image: &str, sa: Option<(&str, Value)>) -> PluginRun {
        let mut request = json!({
            "kind": "CredentialProviderRequest",
            "apiVersion": provider["apiVersion"],
            "image": image,
        });
        if provider.get("tokenAttributes").is_some() {
            if let Some((token, annotations)) = sa {
                request["serviceAccountToken"] = json!(token);
                request["serviceAccountAnnotations"] = annotations;
            }
        }
        let name = provider["name"].as_str().expect("name");
        let mut cmd = Command::new(self.bin_dir.join(name));
        for a in provider["args"].as_array().into_iter().flatten() {
            cmd.arg(a.as_str().expect("arg"));
        }
        for e in provider["env"].as_array().into_iter().flatten() {
            cmd.env(
                e["name"].as_str().expect("env name"),
                e["value"].as_str().expect("env value"),
            );
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("exec plugin");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(request.to_string().as_bytes())
            .expect("write request");
        PluginRun {
            output: child.wait_with_output().expect("wait plugin"),
        }
    }

    /// Run the one provider matching `image`.
    pub fn provide(&self, image: &str, sa: Option<(&str, Value)>) -> PluginRun {
        let m = self.matching(image);
        assert_eq!(m.len(), 1, "one provider must match {image}");
        self.exec(&m[0], image, sa)
    }
}

/// A CredentialProviderConfig for `berth kubelet-credential-provider`
/// answering for `match_image`, with `env` pairs and optional extra YAML
/// lines for the provider (e.g. `tokenAttributes`).
pub fn provider_config(match_image: &str, env: &[(&str, &str)], extra: &str) -> String {
    let mut y = format!(
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: berth\n    matchImages:\n      - \"{match_image}\"\n    defaultCacheDuration: \"10m\"\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    args:\n      - kubelet-credential-provider\n    env:\n"
    );
    for (k, v) in env {
        y.push_str(&format!("      - name: {k}\n        value: \"{v}\"\n"));
    }
    y.push_str(extra);
    y
}

/// `skopeo copy` of `image` into a directory with `user:password`.
pub fn skopeo_pull(dir: &Path, image: &str, user: &str, password: &str) -> Output {
    let policy = super::skopeo::write_policy(dir);
    let dest = dir.join(format!("pulled-{}", super::random_suffix()));
    Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(["copy", "--src-tls-verify=false", "--src-creds"])
        .arg(format!("{user}:{password}"))
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", dest.display()))
        .env("HOME", dir)
        .env("REGISTRY_AUTH_FILE", dir.join("no-auth.json"))
        .output()
        .expect("run skopeo")
}

/// Assert a skopeo pull worked.
pub fn assert_pulls(dir: &Path, image: &str, user: &str, password: &str) {
    let out = skopeo_pull(dir, image, user, password);
    assert!(
        out.status.success(),
        "skopeo could not pull {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The finding of `report` with `code`.
pub fn finding<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|f| f["code"] == code))
        .unwrap_or_else(|| panic!("no {code} in {report:#}"))
}

/// Whether the report has an error.
pub fn has_error(report: &Value) -> bool {
    report["checks"]
        .as_array()
        .is_some_and(|c| c.iter().any(|f| f["status"] == "error"))
}

/// `berth check-health ARGS --output json` in `env`: its exit code and
/// report.
pub fn check_health(env: &super::cli::CliEnv, args: &[&str]) -> (Option<i32>, Value) {
    let mut a = vec!["check-health"];
    a.extend_from_slice(args);
    a.extend(["--output", "json"]);
    let out = env.run(&a, None);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-health printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}
