//! Image references as kubelet reads them (`parsers.ParseImageName`:
//! docker's normalised names): `host[:port]/repository[:tag|@digest]`.

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (`docker.io` for Docker Hub names).
    pub registry: String,
    /// The repository inside it.
    pub repository: String,
    /// The tag or digest (`latest` when neither is given).
    pub reference: String,
}

impl ImageRef {
    /// Parse `image` like docker's `ParseNormalizedNamed`.
    pub fn parse(image: &str) -> Result<ImageRef, String> {
        let image = image.trim();
        if image.is_empty() {
            return Err("the image is empty".into());
        }
        if image.contains("://") {
            return Err(format!(
                "image {image:?} has a scheme: images are named host[:port]/repository[:tag]"
            ));
        }
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (image, None),
        };
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
            {
                (first.to_string(), rest.to_string())
            }
            _ if name.contains('/') => ("docker.io".to_string(), name.to_string()),
            _ => ("docker.io".to_string(), format!("library/{name}")),
        };
        if repository.is_empty()
            || repository.split('/').any(|c| c.is_empty())
            || repository.chars().any(|c| c.is_ascii_uppercase())
        {
            return Err(format!(
                "image {image:?} has no valid repository (lowercase path components)"
            ));
        }
        if registry.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "image {image:?}: the registry name must be lowercase"
            ));
        }
        let reference = match (digest, tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) if !t.is_empty() => t.to_string(),
            (None, Some(_)) => return Err(format!("image {image:?} has an empty tag")),
            (None, None) => "latest".to_string(),
        };
        Ok(ImageRef {
            registry,
            repository,
            reference,
        })
    }

    /// `registry/repository`: the string kubelet matches credentials
    /// against and sends to credential providers.
    pub fn repo_to_pull(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_docker() {
        let i = ImageRef::parse("127.0.0.1:5000/team/app:1.0").expect("ok");
        assert_eq!(
            (
                i.registry.as_str(),
                i.repository.as_str(),
                i.reference.as_str()
            ),
            ("127.0.0.1:5000", "team/app", "1.0")
        );
        assert_eq!(i.repo_to_pull(), "127.0.0.1:5000/team/app");
        let i = ImageRef::parse("reg.example.com/app@sha256:abc").expect("ok");
        assert_eq!(i.reference, "sha256:abc");
        let i = ImageRef::parse("alpine").expect("ok");
        assert_eq!(i.repo_to_pull(), "docker.io/library/alpine");
        assert_eq!(
            ImageRef::parse("localhost:5000/app").expect("ok").reference,
            "latest"
        );
        assert!(ImageRef::parse("https://reg/app").is_err());
        assert!(ImageRef::parse("reg.example.com/App").is_err());
    }
}
