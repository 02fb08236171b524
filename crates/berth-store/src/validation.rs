//! Which references of a pushed manifest must already be in the repository
//! (`berth serve --sparse-manifests`, `--index-platforms`).
//!
//! Strict (the default): every blob of an image manifest (config and
//! layers) and every child of an index. Sparse: an image manifest still
//! needs its config blob (clients read it to know what the image is), but
//! not its layers; an index needs only the children whose platform one of
//! the named platforms covers.

use std::borrow::Cow;

use berth_core::{Digest, ManifestInfo, Platform};

/// The registry's manifest validation setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestValidation {
    /// Accept image manifests whose layers, and indexes whose children,
    /// were not pushed.
    pub sparse: bool,
    /// With `sparse`: index children of these platforms must be present.
    pub index_platforms: Vec<Platform>,
}

/// A manifest's references split into the ones checked before storing it
/// and the ones it may be stored without.
#[derive(Debug)]
pub struct CheckedReferences<'a> {
    /// The manifest with only the references that must be present.
    pub required: Cow<'a, ManifestInfo>,
    /// References it may be stored without (recorded when absent, so a
    /// pull of one can say it was never pushed).
    pub optional: Vec<Digest>,
}

impl ManifestValidation {
    /// Split `info`'s references. Strict validation borrows `info` as it is.
    pub fn split<'a>(&self, info: &'a ManifestInfo) -> CheckedReferences<'a> {
        if !self.sparse {
            return CheckedReferences {
                required: Cow::Borrowed(info),
                optional: Vec::new(),
            };
        }
        let mut required = info.clone();
        let mut optional = Vec::new();
        // An image manifest lists its config first, then its layers.
        if required.blobs.len() > 1 {
            optional.extend(required.blobs.drain(1..));
        }
        let mut children = Vec::new();
        let mut platforms = Vec::new();
        for (digest, platform) in info.manifests.iter().zip(&info.platforms) {
            let named = platform
                .as_ref()
                .is_some_and(|p| self.index_platforms.iter().any(|n| n.covers(p)));
            if named {
                children.push(digest.clone());
                platforms.push(platform.clone());
            } else {
                optional.push(digest.clone());
            }
        }
        required.manifests = children;
        required.platforms = platforms;
        CheckedReferences {
            required: Cow::Owned(required),
            optional,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::manifest::parse_manifest;
    use serde_json::json;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn image() -> ManifestInfo {
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d(1), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d(2), "size": 2}]});
        parse_manifest(None, m.to_string().as_bytes()).expect("valid")
    }

    fn index() -> ManifestInfo {
        let child = |n, arch: &str| {
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": d(n), "size": 2, "platform": {"os": "linux", "architecture": arch}})
        };
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [child(3, "amd64"), child(4, "arm64"),
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d(5), "size": 2}]});
        parse_manifest(None, m.to_string().as_bytes()).expect("valid")
    }

    #[test]
    fn strict_requires_everything_without_copying() {
        let info = image();
        let split = ManifestValidation::default().split(&info);
        assert!(matches!(split.required, Cow::Borrowed(_)));
        assert_eq!(split.required.blobs.len(), 2);
        assert!(split.optional.is_empty());
    }

    #[test]
    fn sparse_keeps_the_config_and_the_named_platforms() {
        let v = ManifestValidation {
            sparse: true,
            index_platforms: vec!["linux/amd64".parse().expect("platform")],
        };
        let info = image();
        let split = v.split(&info);
        assert_eq!(split.required.blobs, vec![d(1).parse().expect("digest")]);
        assert_eq!(
            split.optional,
            vec![d(2).parse::<Digest>().expect("digest")]
        );

        let info = index();
        let split = v.split(&info);
        assert_eq!(
            split.required.manifests,
            vec![d(3).parse().expect("digest")]
        );
        assert_eq!(split.optional.len(), 2);

        let none = ManifestValidation {
            sparse: true,
            index_platforms: Vec::new(),
        };
        assert!(none.split(&info).required.manifests.is_empty());
    }
}
