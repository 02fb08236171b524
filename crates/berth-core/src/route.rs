//! Parsing of `/v2/...` request paths into the distribution API's endpoints.
//!
//! Repository names contain slashes, so the path is matched from the right:
//! the last one to three segments name the endpoint and the rest is the
//! repository. Names and references are returned raw; the caller validates
//! them so that it can answer with the right error code.

/// One endpoint of the distribution API, with its raw path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Route<'a> {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    TagsList {
        /// Raw repository name.
        name: &'a str,
    },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        /// Raw repository name.
        name: &'a str,
        /// Raw tag or digest.
        reference: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart {
        /// Raw repository name.
        name: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload {
        /// Raw repository name.
        name: &'a str,
        /// Upload session id.
        id: &'a str,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob {
        /// Raw repository name.
        name: &'a str,
        /// Raw digest.
        digest: &'a str,
    },
    /// `/v2/<name>/referrers/<digest>`
    Referrers {
        /// Raw repository name.
        name: &'a str,
        /// Raw subject digest.
        digest: &'a str,
    },
}

impl<'a> V2Route<'a> {
    /// The raw repository name of a repository-scoped endpoint.
    pub fn repository(&self) -> Option<&'a str> {
        match *self {
            V2Route::Base | V2Route::Catalog => None,
            V2Route::TagsList { name }
            | V2Route::Manifest { name, .. }
            | V2Route::UploadStart { name }
            | V2Route::Upload { name, .. }
            | V2Route::Blob { name, .. }
            | V2Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Parse the part of the path after `/v2/` (e.g. `library/alpine/tags/list`).
/// Returns `None` when no endpoint matches.
pub fn parse_v2_path(rest: &str) -> Option<V2Route<'_>> {
    if rest.is_empty() {
        return Some(V2Route::Base);
    }
    if rest == "_catalog" {
        return Some(V2Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return non_empty(name).map(|name| V2Route::TagsList { name });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return non_empty(name).map(|name| V2Route::UploadStart { name });
    }
    let (prefix, last) = rest.rsplit_once('/')?;
    if last.is_empty() {
        return None;
    }
    let (name, kind) = prefix.rsplit_once('/')?;
    let name = non_empty(name)?;
    match kind {
        "manifests" => Some(V2Route::Manifest {
            name,
            reference: last,
        }),
        "blobs" => Some(V2Route::Blob { name, digest: last }),
        "referrers" => Some(V2Route::Referrers { name, digest: last }),
        "uploads" => {
            let name = name.strip_suffix("/blobs")?;
            non_empty(name).map(|name| V2Route::Upload { name, id: last })
        }
        _ => None,
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(parse_v2_path(""), Some(V2Route::Base));
        assert_eq!(parse_v2_path("_catalog"), Some(V2Route::Catalog));
        assert_eq!(
            parse_v2_path("a/b/tags/list"),
            Some(V2Route::TagsList { name: "a/b" })
        );
        assert_eq!(
            parse_v2_path("a/b/manifests/latest"),
            Some(V2Route::Manifest {
                name: "a/b",
                reference: "latest"
            })
        );
        assert_eq!(
            parse_v2_path("a/blobs/uploads/"),
            Some(V2Route::UploadStart { name: "a" })
        );
        assert_eq!(
            parse_v2_path("a/blobs/uploads"),
            Some(V2Route::UploadStart { name: "a" })
        );
        assert_eq!(
            parse_v2_path("a/blobs/uploads/123"),
            Some(V2Route::Upload {
                name: "a",
                id: "123"
            })
        );
        assert_eq!(
            parse_v2_path("a/blobs/sha256:00"),
            Some(V2Route::Blob {
                name: "a",
                digest: "sha256:00"
            })
        );
        assert_eq!(
            parse_v2_path("x/y/referrers/sha256:00"),
            Some(V2Route::Referrers {
                name: "x/y",
                digest: "sha256:00"
            })
        );
        // a repository may itself be called "blobs" or "manifests"
        assert_eq!(
            parse_v2_path("blobs/manifests/manifests/v1"),
            Some(V2Route::Manifest {
                name: "blobs/manifests",
                reference: "v1"
            })
        );
    }

    #[test]
    fn rejects_non_endpoints() {
        for p in [
            "a",
            "a/b",
            "/manifests/x",
            "a/manifests/",
            "tags/list",
            "a/unknown/x",
            "uploads/x",
        ] {
            assert_eq!(parse_v2_path(p), None, "{p}");
        }
    }
}
