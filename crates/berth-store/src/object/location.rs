//! Where blobs live: the `--blob-store` URL and the object store it opens.
//!
//! Credentials never come from the URL (a URL is shown in logs and on
//! command lines); they are read from the environment variables the cloud
//! SDKs use. Errors name what is missing, never a secret's value.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;

use super::ObjectBlobStore;
use crate::error::StoreError;

/// A parsed `--blob-store` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStoreLocation {
    /// `file:///path`: the filesystem backend rooted at that directory.
    Filesystem(PathBuf),
    /// `s3://bucket[/prefix][?endpoint=http://host:port]`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix ("" for none), without leading or trailing `/`.
        prefix: String,
        /// An S3-compatible endpoint from the URL (path-style addressing).
        endpoint: Option<String>,
    },
    /// `azure://container[/prefix]`.
    Azure {
        /// Container name.
        container: String,
        /// Blob name prefix ("" for none).
        prefix: String,
    },
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

impl std::str::FromStr for BlobStoreLocation {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|e| {
            invalid(format!(
                "blob store must be a URL (file:///path, s3://bucket[/prefix], azure://container[/prefix]): {e}"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "the blob store URL must not carry credentials; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY \
                 or AZURE_STORAGE_ACCOUNT_NAME/AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_CONNECTION_STRING) instead",
            ));
        }
        let prefix = url.path().trim_matches('/').to_string();
        let bucket = || {
            url.host_str()
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    invalid(format!(
                        "{}:// needs a bucket or container name",
                        url.scheme()
                    ))
                })
        };
        match url.scheme() {
            "file" => {
                if url
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(invalid("file:// URLs must name a local path: file:///path"));
                }
                let path = url
                    .to_file_path()
                    .map_err(|_| invalid("file:// URL does not name an absolute path"))?;
                Ok(BlobStoreLocation::Filesystem(path))
            }
            "s3" => {
                let mut endpoint = None;
                for (k, v) in url.query_pairs() {
                    match k.as_ref() {
                        "endpoint" => endpoint = Some(v.into_owned()),
                        other => {
                            return Err(invalid(format!(
                                "unknown s3:// URL parameter '{other}' (known: endpoint)"
                            )))
                        }
                    }
                }
                Ok(BlobStoreLocation::S3 {
                    bucket: bucket()?,
                    prefix,
                    endpoint,
                })
            }
            "azure" => {
                if url.query().is_some() {
                    return Err(invalid("azure:// URLs take no parameters"));
                }
                Ok(BlobStoreLocation::Azure {
                    container: bucket()?,
                    prefix,
                })
            }
            other => Err(invalid(format!(
                "unsupported blob store scheme '{other}' (supported: file, s3, azure)"
            ))),
        }
    }
}

impl std::fmt::Display for BlobStoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |scheme: &str, name: &str, prefix: &str| {
            if prefix.is_empty() {
                format!("{scheme}://{name}")
            } else {
                format!("{scheme}://{name}/{prefix}")
            }
        };
        match self {
            BlobStoreLocation::Filesystem(p) => write!(f, "file://{}", p.display()),
            BlobStoreLocation::S3 {
                bucket,
                prefix,
                endpoint,
            } => {
                f.write_str(&join("s3", bucket, prefix))?;
                match endpoint {
                    Some(e) => write!(f, "?endpoint={e}"),
                    None => Ok(()),
                }
            }
            BlobStoreLocation::Azure { container, prefix } => {
                f.write_str(&join("azure", container, prefix))
            }
        }
    }
}

/// Where an object store's credentials and settings come from.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// The process environment (`AWS_*`, `AZURE_STORAGE_*`), as `berth
    /// serve` uses it; on S3 the SDK's other sources (web identity, instance
    /// metadata) apply when no keys are set.
    #[default]
    ProcessEnv,
    /// These variables only (tests that run several stores in one process).
    Vars(std::collections::HashMap<String, String>),
}

impl Credentials {
    /// A variable, treating empty as unset.
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Credentials::ProcessEnv => std::env::var(name).ok(),
            Credentials::Vars(m) => m.get(name).cloned(),
        }
        .filter(|v| !v.is_empty())
    }
}

/// Open the S3 store: credentials, region and endpoint from the standard
/// `AWS_*` variables; `?endpoint=` overrides `AWS_ENDPOINT_URL`.
pub(super) fn open_s3(
    bucket: &str,
    prefix: &str,
    endpoint: Option<&str>,
    creds: &Credentials,
) -> Result<ObjectBlobStore, StoreError> {
    let mut b = match creds {
        Credentials::ProcessEnv => AmazonS3Builder::from_env(),
        Credentials::Vars(_) => AmazonS3Builder::new(),
    }
    .with_bucket_name(bucket);
    if let Some(v) = creds.get("AWS_ACCESS_KEY_ID") {
        b = b.with_access_key_id(v);
    }
    if let Some(v) = creds.get("AWS_SECRET_ACCESS_KEY") {
        b = b.with_secret_access_key(v);
    }
    if let Some(v) = creds.get("AWS_SESSION_TOKEN") {
        b = b.with_token(v);
    }
    match creds
        .get("AWS_REGION")
        .or_else(|| creds.get("AWS_DEFAULT_REGION"))
    {
        Some(r) => b = b.with_region(r),
        None => b = b.with_region("us-east-1"),
    }
    let endpoint = endpoint
        .map(str::to_string)
        .or_else(|| creds.get("AWS_ENDPOINT_URL"));
    if let Some(e) = &endpoint {
        b = b
            .with_endpoint(e)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(e.starts_with("http://"));
    }
    let s3 = Arc::new(
        b.build()
            .map_err(|e| invalid(format!("configuring S3 bucket {bucket}: {e}")))?,
    );
    Ok(ObjectBlobStore::new(
        s3.clone(),
        s3.clone(),
        s3,
        prefix,
        format!("s3://{bucket}"),
    ))
}

/// The parts of an Azure Storage connection string berth uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AzureConnection {
    /// `AccountName`.
    pub account: Option<String>,
    /// `AccountKey`.
    pub key: Option<String>,
    /// `BlobEndpoint`, or one built from `DefaultEndpointsProtocol` and
    /// `EndpointSuffix`.
    pub blob_endpoint: Option<String>,
    /// `UseDevelopmentStorage=true`.
    pub development: bool,
}

impl AzureConnection {
    /// Parse `Key=Value;Key=Value` (values may contain `=`, as base64 keys do).
    pub fn parse(s: &str) -> AzureConnection {
        let mut c = AzureConnection::default();
        let (mut protocol, mut suffix) = (None, None);
        for pair in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "accountname" => c.account = Some(v.to_string()),
                "accountkey" => c.key = Some(v.to_string()),
                "blobendpoint" => c.blob_endpoint = Some(v.trim_end_matches('/').to_string()),
                "defaultendpointsprotocol" => protocol = Some(v.to_string()),
                "endpointsuffix" => suffix = Some(v.to_string()),
                "usedevelopmentstorage" => c.development = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        if c.blob_endpoint.is_none() {
            if let (Some(account), Some(suffix)) = (&c.account, suffix) {
                let protocol = protocol.unwrap_or_else(|| "https".into());
                c.blob_endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
            }
        }
        c
    }
}

/// Open the Azure Blob store from `AZURE_STORAGE_CONNECTION_STRING` or
/// `AZURE_STORAGE_ACCOUNT_NAME` + `AZURE_STORAGE_ACCOUNT_KEY`.
pub(super) fn open_azure(
    container: &str,
    prefix: &str,
    creds: &Credentials,
) -> Result<ObjectBlobStore, StoreError> {
    let mut b = MicrosoftAzureBuilder::new().with_container_name(container);
    if let Some(cs) = creds.get("AZURE_STORAGE_CONNECTION_STRING") {
        let c = AzureConnection::parse(&cs);
        if c.development {
            b = b.with_use_emulator(true);
        } else {
            let (Some(account), Some(key)) = (c.account, c.key) else {
                return Err(invalid(
                    "AZURE_STORAGE_CONNECTION_STRING needs AccountName and AccountKey",
                ));
            };
            b = b.with_account(account).with_access_key(key);
            if let Some(e) = c.blob_endpoint {
                b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
            }
        }
    } else {
        let (Some(account), Some(key)) = (
            creds.get("AZURE_STORAGE_ACCOUNT_NAME"),
            creds.get("AZURE_STORAGE_ACCOUNT_KEY"),
        ) else {
            return Err(invalid(
                "azure:// needs AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY",
            ));
        };
        b = b.with_account(account).with_access_key(key);
    }
    let az = Arc::new(
        b.build()
            .map_err(|e| invalid(format!("configuring Azure container {container}: {e}")))?,
    );
    Ok(ObjectBlobStore::new(
        az.clone(),
        az.clone(),
        az,
        prefix,
        format!("azure://{container}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_schemes() {
        assert_eq!(
            "file:///var/lib/berth/blobs"
                .parse::<BlobStoreLocation>()
                .ok(),
            Some(BlobStoreLocation::Filesystem("/var/lib/berth/blobs".into()))
        );
        assert_eq!(
            "s3://bkt/a/b/?endpoint=http://127.0.0.1:9000"
                .parse::<BlobStoreLocation>()
                .ok(),
            Some(BlobStoreLocation::S3 {
                bucket: "bkt".into(),
                prefix: "a/b".into(),
                endpoint: Some("http://127.0.0.1:9000".into())
            })
        );
        assert_eq!(
            "azure://c".parse::<BlobStoreLocation>().ok(),
            Some(BlobStoreLocation::Azure {
                container: "c".into(),
                prefix: String::new()
            })
        );
    }

    #[test]
    fn refuses_credentials_and_unknown_schemes_without_echoing_them() {
        let e = "s3://AKIA:hunter2@bkt/p"
            .parse::<BlobStoreLocation>()
            .expect_err("refused")
            .to_string();
        assert!(!e.contains("hunter2") && !e.contains("AKIA"), "{e}");
        assert!("gs://b".parse::<BlobStoreLocation>().is_err());
        assert!("s3:///nobucket".parse::<BlobStoreLocation>().is_err());
        assert!("s3://b?region=x".parse::<BlobStoreLocation>().is_err());
    }

    #[test]
    fn reads_azurite_connection_strings() {
        let c = AzureConnection::parse(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
             AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\
             BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        );
        assert_eq!(c.account.as_deref(), Some("devstoreaccount1"));
        assert!(c.key.as_deref().is_some_and(|k| k.ends_with("GMGw==")));
        assert_eq!(
            c.blob_endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        let c =
            AzureConnection::parse("AccountName=a;AccountKey=k;EndpointSuffix=core.windows.net");
        assert_eq!(
            c.blob_endpoint.as_deref(),
            Some("https://a.blob.core.windows.net")
        );
    }
}
