//! Manifest parsing and validation: which media types berth accepts, what a
//! manifest references, and the facts the registry indexes (subject,
//! artifact type) for the referrers API.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::error::{ErrorCode, OciError};

/// Largest manifest body berth accepts (4 MiB, as the spec suggests).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Media types berth knows.
pub struct MediaType;

impl MediaType {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &'static str = "application/vnd.oci.image.index.v1+json";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &'static str =
        "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &'static str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker schema 1 (unsupported; long deprecated).
    pub const DOCKER_SCHEMA1: &'static str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Docker schema 1, signed (unsupported).
    pub const DOCKER_SCHEMA1_SIGNED: &'static str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

/// Whether a manifest lists blobs (an image) or other manifests (an index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// Image manifest: config + layers.
    Image,
    /// Index / manifest list: child manifests.
    Index,
}

/// An OCI content descriptor as it appears in the referrers index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: i64,
    /// Artifact type, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<Map<String, Value>>,
}

/// What berth learned from a valid manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestInfo {
    /// The effective media type (returned as `Content-Type` on GET).
    pub media_type: String,
    /// Image or index.
    pub kind: ManifestKind,
    /// Blobs this manifest needs in the repository (config and layers,
    /// without foreign / non-distributable layers).
    pub blobs: Vec<Digest>,
    /// Child manifests this index needs in the repository.
    pub manifests: Vec<Digest>,
    /// The `platform` of each child in [`ManifestInfo::manifests`] (same
    /// order), when its descriptor names one.
    pub platforms: Vec<Option<Platform>>,
    /// The `subject` descriptor, when present.
    pub subject: Option<Digest>,
    /// The artifact type for the referrers API: `artifactType`, else the
    /// config media type of an image manifest.
    pub artifact_type: Option<String>,
    /// The manifest's own annotations.
    pub annotations: Option<Map<String, Value>>,
}

/// A descriptor's `platform` (the fields berth matches on), or a platform
/// an operator names as `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `os`, e.g. `linux`.
    pub os: String,
    /// `architecture`, e.g. `arm64`.
    pub architecture: String,
    /// `variant`, e.g. `v8`.
    pub variant: Option<String>,
}

impl Platform {
    /// Whether a child with platform `child` is one this platform names:
    /// os and architecture equal, and the variant too when this one has one.
    pub fn covers(&self, child: &Platform) -> bool {
        self.os == child.os
            && self.architecture == child.architecture
            && self
                .variant
                .as_ref()
                .is_none_or(|v| child.variant.as_ref() == Some(v))
    }

    fn from_descriptor(v: &Value) -> Option<Platform> {
        let p = v.get("platform")?.as_object()?;
        Some(Platform {
            os: p.get("os")?.as_str()?.to_string(),
            architecture: p.get("architecture")?.as_str()?.to_string(),
            variant: p
                .get("variant")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let ok = |p: &&str| !p.is_empty() && !p.contains(char::is_whitespace);
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(format!(
                "platform '{s}' must have the form os/architecture[/variant], e.g. linux/arm64"
            )),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn invalid(msg: impl Into<String>) -> OciError {
    OciError::with_message(ErrorCode::ManifestInvalid, msg)
}

/// Strip parameters and whitespace from a `Content-Type` value.
pub fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn known(mt: &str) -> Option<ManifestKind> {
    match mt {
        MediaType::OCI_MANIFEST | MediaType::DOCKER_MANIFEST => Some(ManifestKind::Image),
        MediaType::OCI_INDEX | MediaType::DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

/// Parse and validate a manifest body sent with `content_type`.
pub fn parse_manifest(content_type: Option<&str>, body: &[u8]) -> Result<ManifestInfo, OciError> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(OciError::with_message(
            ErrorCode::TooLarge,
            format!("manifest is larger than the {MAX_MANIFEST_BYTES}-byte limit"),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("manifest must be a JSON object"))?;

    let header_type = content_type
        .map(essence)
        .filter(|t| !t.is_empty() && *t != "application/json" && *t != "application/octet-stream");
    let body_type = match obj.get("mediaType") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(invalid("mediaType must be a string")),
    };
    if let (Some(h), Some(b)) = (header_type, body_type) {
        if h != b {
            return Err(invalid(format!(
                "Content-Type '{h}' does not match the manifest's mediaType '{b}'"
            )));
        }
    }
    let media_type = match header_type.or(body_type) {
        Some(t) => t.to_string(),
        // No declared type: OCI allows an image manifest or index without mediaType.
        None if obj.contains_key("manifests") => MediaType::OCI_INDEX.to_string(),
        None if obj.contains_key("config") => MediaType::OCI_MANIFEST.to_string(),
        None => return Err(invalid("manifest has no mediaType and no Content-Type")),
    };
    if media_type == MediaType::DOCKER_SCHEMA1 || media_type == MediaType::DOCKER_SCHEMA1_SIGNED {
        return Err(OciError::with_message(
            ErrorCode::ManifestInvalid,
            "Docker schema 1 manifests are not supported; push schema 2 or OCI",
        ));
    }
    let kind = known(&media_type)
        .ok_or_else(|| invalid(format!("unsupported manifest media type '{media_type}'")))?;

    match obj.get("schemaVersion").and_then(Value::as_i64) {
        Some(2) => {}
        _ => return Err(invalid("schemaVersion must be 2")),
    }

    let artifact_type_field = match obj.get("artifactType") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("artifactType must be a string")),
    };
    let subject = match obj.get("subject") {
        None | Some(Value::Null) => None,
        Some(v) => Some(descriptor(v, "subject")?.digest),
    };
    let annotations = obj.get("annotations").and_then(Value::as_object).cloned();

    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    let mut platforms = Vec::new();
    let artifact_type = match kind {
        ManifestKind::Image => {
            let config = obj
                .get("config")
                .ok_or_else(|| invalid("image manifest must have a config descriptor"))?;
            let config = descriptor(config, "config")?;
            blobs.push(config.digest.clone());
            let layers = match obj.get("layers") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a.iter().collect(),
                Some(_) => return Err(invalid("layers must be an array")),
            };
            for (i, l) in layers.into_iter().enumerate() {
                let d = descriptor(l, &format!("layers[{i}]"))?;
                if !is_foreign(&d.media_type) {
                    blobs.push(d.digest);
                }
            }
            artifact_type_field.or(Some(config.media_type))
        }
        ManifestKind::Index => {
            let list = match obj.get("manifests") {
                Some(Value::Array(a)) => a,
                _ => return Err(invalid("index must have a manifests array")),
            };
            for (i, m) in list.iter().enumerate() {
                manifests.push(descriptor(m, &format!("manifests[{i}]"))?.digest);
                platforms.push(Platform::from_descriptor(m));
            }
            artifact_type_field
        }
    };
    Ok(ManifestInfo {
        media_type,
        kind,
        blobs,
        manifests,
        platforms,
        subject,
        artifact_type,
        annotations,
    })
}

fn is_foreign(media_type: &str) -> bool {
    media_type.contains(".foreign.") || media_type.contains("nondistributable")
}

fn descriptor(v: &Value, at: &str) -> Result<Descriptor, OciError> {
    let o = v
        .as_object()
        .ok_or_else(|| invalid(format!("{at} must be a descriptor object")))?;
    let media_type = o
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}.mediaType must be a string")))?
        .to_string();
    let digest = o
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}.digest must be a string")))?
        .parse::<Digest>()
        .map_err(|e| invalid(format!("{at}.digest: {e}")))?;
    let size = o
        .get("size")
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
        .ok_or_else(|| invalid(format!("{at}.size must be a non-negative integer")))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type: o
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string),
        annotations: o.get("annotations").and_then(Value::as_object).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(n: u8) -> String {
        format!("sha256:{}", hex_of(n))
    }
    fn hex_of(n: u8) -> String {
        format!("{:02x}", n).repeat(32)
    }

    #[test]
    fn image_manifest_lists_blobs_and_artifact_type() {
        let m = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example+json", "digest": d(1), "size": 2},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d(2), "size": 3},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": d(3), "size": 3}
            ],
            "subject": {"mediaType": MediaType::OCI_MANIFEST, "digest": d(4), "size": 10}
        });
        let info = parse_manifest(Some(MediaType::OCI_MANIFEST), m.to_string().as_bytes()).unwrap();
        assert_eq!(info.kind, ManifestKind::Image);
        assert_eq!(info.blobs.len(), 2);
        assert_eq!(info.subject.unwrap().to_string(), d(4));
        assert_eq!(
            info.artifact_type.as_deref(),
            Some("application/vnd.example+json")
        );
    }

    #[test]
    fn index_lists_children() {
        let m = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::DOCKER_MANIFEST_LIST,
            "manifests": [{"mediaType": MediaType::DOCKER_MANIFEST, "digest": d(5), "size": 7}]
        });
        let info = parse_manifest(None, m.to_string().as_bytes()).unwrap();
        assert_eq!(info.kind, ManifestKind::Index);
        assert_eq!(info.manifests.len(), 1);
        assert_eq!(info.media_type, MediaType::DOCKER_MANIFEST_LIST);
        assert_eq!(info.platforms, vec![None]);
    }

    #[test]
    fn index_children_carry_their_platform() {
        let m = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::OCI_INDEX,
            "manifests": [
                {"mediaType": MediaType::OCI_MANIFEST, "digest": d(1), "size": 7,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": MediaType::OCI_MANIFEST, "digest": d(2), "size": 7,
                 "platform": {"os": "linux", "architecture": "amd64"}},
            ]
        });
        let info = parse_manifest(None, m.to_string().as_bytes()).unwrap();
        let arm: Platform = "linux/arm64".parse().unwrap();
        let arm_v7: Platform = "linux/arm64/v7".parse().unwrap();
        let child = info.platforms[0].as_ref().unwrap();
        assert!(arm.covers(child));
        assert!(!arm_v7.covers(child));
        assert!(!arm.covers(info.platforms[1].as_ref().unwrap()));
        assert_eq!(child.to_string(), "linux/arm64/v8");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_invalid() {
        let cases: Vec<(Option<&str>, String)> = vec![
            (None, "not json".into()),
            (None, "[]".into()),
            (Some(MediaType::OCI_MANIFEST), json!({"schemaVersion": 2}).to_string()),
            (
                Some(MediaType::OCI_INDEX),
                json!({"schemaVersion": 2, "mediaType": MediaType::OCI_MANIFEST, "config": {}}).to_string(),
            ),
            (
                Some(MediaType::OCI_MANIFEST),
                json!({"schemaVersion": 1, "config": {"mediaType": "x", "digest": d(1), "size": 1}}).to_string(),
            ),
            (
                Some(MediaType::OCI_MANIFEST),
                json!({"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:zz", "size": 1}}).to_string(),
            ),
            (
                Some(MediaType::OCI_MANIFEST),
                json!({"schemaVersion": 2, "config": {"mediaType": "x", "digest": d(1), "size": -1}}).to_string(),
            ),
            (Some("text/plain"), json!({"schemaVersion": 2}).to_string()),
        ];
        for (ct, body) in cases {
            let e = parse_manifest(ct, body.as_bytes()).unwrap_err();
            assert_eq!(e.code, ErrorCode::ManifestInvalid, "{body}");
        }
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert_eq!(
            parse_manifest(None, &big).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }
}
