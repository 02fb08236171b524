//! `berth repository list|show-tags|show-manifests|untag|delete|purge`.

use clap::{Args, Subcommand};
use reqwest::Method;

use crate::mgmt::{repo_path, seg, Common, Ctx};

/// Repositories, tags and manifests.
#[derive(Args, Debug)]
pub struct RepositoryArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: RepositoryVerb,
}

#[derive(Subcommand, Debug)]
enum RepositoryVerb {
    /// List repositories.
    List,
    /// Tags with their digests, sizes and times.
    ShowTags {
        /// Repository name.
        #[arg(long)]
        repository: String,
    },
    /// Manifests with their tags.
    ShowManifests {
        /// Repository name.
        #[arg(long)]
        repository: String,
    },
    /// Remove a tag, keeping the manifest (asks for confirmation).
    Untag {
        /// `REPOSITORY:TAG`.
        #[arg(long)]
        image: String,
    },
    /// Delete a repository, or one manifest with `--image R@DIGEST` (asks
    /// for confirmation).
    Delete {
        /// Repository name.
        #[arg(long, conflicts_with = "image", required_unless_present = "image")]
        repository: Option<String>,
        /// `REPOSITORY@DIGEST`.
        #[arg(long)]
        image: Option<String>,
    },
    /// Delete tags older than `--ago` that a filter matches, then the
    /// manifests they leave untagged (as `acr purge`; no confirmation:
    /// try `--dry-run` first).
    Purge {
        /// `<repository-regex>:<tag-regex>`, both matched against the whole
        /// name; repeat for more.
        #[arg(long, required = true)]
        filter: Vec<String>,
        /// Tags last updated longer ago than this go: `30d`, `2d3h6m`, `0`.
        #[arg(long)]
        ago: String,
        /// Also delete manifests untagged for longer than `--ago`.
        #[arg(long)]
        untagged: bool,
        /// Of the tags that would go, keep the newest N per repository.
        #[arg(long, default_value_t = 0)]
        keep: u64,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

const PURGE_SUMMARY: &[&str] = &[
    "dryRun",
    "repositories",
    "tags",
    "manifests",
    "manifestBytes",
    "durationMs",
];
const PURGE_DELETED: &[&str] = &["kind", "repository", "tag", "digest", "size"];

/// `R:T` → (R, T); the tag follows the last `:` after the last `/`.
fn split_tag(image: &str) -> anyhow::Result<(&str, &str)> {
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) if slash + i > 0 && slash + i + 1 < image.len() => {
            Ok((&image[..slash + i], &image[slash + i + 1..]))
        }
        _ => anyhow::bail!("--image '{image}' must be REPOSITORY:TAG"),
    }
}

/// `R@sha256:...` → (R, digest).
fn split_digest(image: &str) -> anyhow::Result<(&str, &str)> {
    match image.split_once('@') {
        Some((r, d)) if !r.is_empty() && d.contains(':') => Ok((r, d)),
        _ => anyhow::bail!("--image '{image}' must be REPOSITORY@DIGEST (e.g. app@sha256:…)"),
    }
}

/// Run a `berth repository` verb.
pub async fn run(args: RepositoryArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        RepositoryVerb::List => {
            Ctx::open(c)
                .await?
                .show(Method::GET, "repositories", None, &[])
                .await
        }
        RepositoryVerb::ShowTags { repository } => {
            let path = format!("repositories/{}/tags", repo_path(&repository));
            let cols = &["name", "digest", "size", "mediaType", "updatedAt"];
            Ctx::open(c)
                .await?
                .show(Method::GET, &path, None, cols)
                .await
        }
        RepositoryVerb::ShowManifests { repository } => {
            let path = format!("repositories/{}/manifests", repo_path(&repository));
            let cols = &["digest", "tags", "size", "mediaType", "createdAt"];
            Ctx::open(c)
                .await?
                .show(Method::GET, &path, None, cols)
                .await
        }
        RepositoryVerb::Untag { image } => {
            let (repo, tag) = split_tag(&image)?;
            c.confirm(&format!("untag {image}"))?;
            let path = format!("repositories/{}/tags/{}", repo_path(repo), seg(tag));
            Ctx::open(c)
                .await?
                .show(Method::DELETE, &path, None, &[])
                .await
        }
        RepositoryVerb::Delete {
            repository: Some(repo),
            ..
        } => {
            c.confirm(&format!(
                "delete repository '{repo}' and every manifest in it"
            ))?;
            let path = format!("repositories/{}", repo_path(&repo));
            Ctx::open(c)
                .await?
                .show(Method::DELETE, &path, None, &[])
                .await
        }
        RepositoryVerb::Delete {
            repository: None,
            image,
        } => {
            let image = image.unwrap_or_default();
            let (repo, digest) = split_digest(&image)?;
            c.confirm(&format!("delete manifest {image}"))?;
            let path = format!("repositories/{}/manifests/{}", repo_path(repo), seg(digest));
            Ctx::open(c)
                .await?
                .show(Method::DELETE, &path, None, &[])
                .await
        }
        RepositoryVerb::Purge {
            filter,
            ago,
            untagged,
            keep,
            dry_run,
        } => {
            let body = serde_json::json!({
                "filters": filter,
                "ago": ago,
                "untagged": untagged,
                "keep": keep,
                "dryRun": dry_run,
            });
            let ctx = Ctx::open(c).await?;
            let Some(report) = ctx.call(Method::POST, "purge", Some(body)).await? else {
                anyhow::bail!("the registry answered without a report");
            };
            if ctx.format() == crate::output::Format::Json {
                ctx.print(&report, &[]);
                return Ok(());
            }
            ctx.print(&report, PURGE_SUMMARY);
            if let Some(deleted) = report
                .get("deleted")
                .filter(|d| d.as_array().is_some_and(|a| !a.is_empty()))
            {
                println!();
                ctx.print(deleted, PURGE_DELETED);
                if report.get("truncated").and_then(serde_json::Value::as_bool) == Some(true) {
                    println!(
                        "(only the first {} deletions are listed)",
                        deleted.as_array().map_or(0, Vec::len)
                    );
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        assert_eq!(split_tag("a/b:v1").unwrap(), ("a/b", "v1"));
        assert_eq!(split_tag("host:5000/a:v1").unwrap(), ("host:5000/a", "v1"));
        assert!(split_tag("a/b").is_err());
        assert!(split_tag(":v1").is_err());
        assert_eq!(split_digest("a@sha256:ab").unwrap(), ("a", "sha256:ab"));
        assert!(split_digest("a:v1").is_err());
    }
}
