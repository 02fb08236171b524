//! `/api/v1/repositories`: listing and deleting repositories, tags and
//! manifests. Repository names contain slashes, so everything below
//! `/api/v1/repositories/` is one wildcard, split from the right:
//! `<name>/tags`, `<name>/manifests`, `<name>/tags/<tag>`,
//! `<name>/manifests/<digest>`, `<name>`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_core::{Digest, RepositoryName, Tag};
use berth_store::meta::{ManifestDetail, TagDetail};
use serde::Serialize;
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, MgmtError, MgmtResult};
use super::ApiState;
use crate::audit::RepoNote;

/// Most repositories listed.
const MAX_REPOSITORIES: i64 = 100_000;

/// A tag.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagView {
    /// Tag name.
    pub name: String,
    /// Digest of the tagged manifest.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: i64,
    /// Manifest media type.
    pub media_type: String,
    /// When the manifest was pushed, unix milliseconds.
    pub created_at: i64,
    /// When the tag last moved, unix milliseconds.
    pub updated_at: i64,
}

impl From<TagDetail> for TagView {
    fn from(t: TagDetail) -> Self {
        TagView {
            name: t.name,
            digest: t.digest,
            size: t.size,
            media_type: t.media_type,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A manifest.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestView {
    /// Digest.
    pub digest: String,
    /// Media type.
    pub media_type: String,
    /// Artifact type, when set.
    pub artifact_type: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// When it was pushed, unix milliseconds.
    pub created_at: i64,
    /// Tags pointing at it.
    pub tags: Vec<String>,
}

impl From<ManifestDetail> for ManifestView {
    fn from(m: ManifestDetail) -> Self {
        ManifestView {
            digest: m.digest,
            media_type: m.media_type,
            artifact_type: m.artifact_type,
            size: m.size,
            created_at: m.created_at,
            tags: m.tags,
        }
    }
}

fn repo_name(name: &str) -> MgmtResult<RepositoryName> {
    name.parse()
        .map_err(|_| MgmtError::not_found(format!("no repository named {name:?}")))
}

fn no_repo(name: &str) -> MgmtError {
    MgmtError::not_found(format!("no repository named {name:?}"))
}

/// List repository names.
#[utoipa::path(get, path = "/api/v1/repositories", tag = "repositories",
    responses((status = 200, body = Vec<String>)))]
pub async fn list(State(state): State<ApiState>, caller: Caller) -> MgmtResult<Json<Vec<String>>> {
    caller.require(ManagementAction::Read)?;
    Ok(Json(state.registry.catalog(None, MAX_REPOSITORIES).await?))
}

/// `GET /api/v1/repositories/{name}/tags|manifests`.
pub async fn dispatch_get(
    state: State<ApiState>,
    caller: Caller,
    Path(rest): Path<String>,
) -> Response {
    if let Some(name) = rest.strip_suffix("/tags") {
        return tags(state, caller, Path(name.to_string()))
            .await
            .into_response();
    }
    if let Some(name) = rest.strip_suffix("/manifests") {
        return manifests(state, caller, Path(name.to_string()))
            .await
            .into_response();
    }
    MgmtError::not_found("use /api/v1/repositories/{name}/tags or /manifests").into_response()
}

/// `DELETE /api/v1/repositories/{name}[/tags/{tag}|/manifests/{digest}]`.
pub async fn dispatch_delete(
    state: State<ApiState>,
    caller: Caller,
    Path(rest): Path<String>,
) -> Response {
    if let Some((name, last)) = rest.rsplit_once('/') {
        if let Some(repo) = name.strip_suffix("/tags") {
            return untag(state, caller, Path((repo.to_string(), last.to_string())))
                .await
                .into_response();
        }
        if let Some(repo) = name.strip_suffix("/manifests") {
            return delete_manifest(state, caller, Path((repo.to_string(), last.to_string())))
                .await
                .into_response();
        }
    }
    delete_repository(state, caller, Path(rest))
        .await
        .into_response()
}

/// Tags of a repository with digest, size, media type and times.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/tags", tag = "repositories",
    params(("name" = String, Path, description = "repository name (may contain slashes)")),
    responses((status = 200, body = Vec<TagView>), (status = 404, body = ErrorBody)))]
pub async fn tags(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<Json<Vec<TagView>>> {
    caller.require(ManagementAction::Read)?;
    let repo = repo_name(&name)?;
    let tags = state
        .registry
        .meta()
        .tag_details(repo.as_str())
        .await?
        .ok_or_else(|| no_repo(&name))?;
    Ok(Json(tags.into_iter().map(Into::into).collect()))
}

/// Manifests of a repository.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/manifests", tag = "repositories",
    params(("name" = String, Path, description = "repository name (may contain slashes)")),
    responses((status = 200, body = Vec<ManifestView>), (status = 404, body = ErrorBody)))]
pub async fn manifests(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<Json<Vec<ManifestView>>> {
    caller.require(ManagementAction::Read)?;
    let repo = repo_name(&name)?;
    let list = state
        .registry
        .meta()
        .manifest_details(repo.as_str())
        .await?
        .ok_or_else(|| no_repo(&name))?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// Remove a tag (the manifest stays).
#[utoipa::path(delete, path = "/api/v1/repositories/{name}/tags/{tag}", tag = "repositories",
    params(("name" = String, Path, description = "repository name"), ("tag" = String, Path, description = "tag")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn untag(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, tag)): Path<(String, String)>,
) -> MgmtResult<StatusCode> {
    caller.note_repository(RepoNote {
        repository: name.clone(),
        operation: "untag",
        tag: Some(tag.clone()),
        ..RepoNote::default()
    });
    caller.require(ManagementAction::Write)?;
    let repo = repo_name(&name)?;
    let missing = || MgmtError::not_found(format!("no tag {tag:?} in {name:?}"));
    let tag_ok: Tag = tag.parse().map_err(|_| missing())?;
    if !state
        .registry
        .meta()
        .delete_tag(repo.as_str(), tag_ok.as_str())
        .await?
    {
        return Err(missing());
    }
    tracing::info!(target: "berth::audit", operation = "Untag", principal = %caller.principal.reference(), repository = %name, tag = %tag, "untagged via management API");
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a manifest and the tags pointing at it.
#[utoipa::path(delete, path = "/api/v1/repositories/{name}/manifests/{digest}", tag = "repositories",
    params(("name" = String, Path, description = "repository name"), ("digest" = String, Path, description = "manifest digest")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_manifest(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, digest)): Path<(String, String)>,
) -> MgmtResult<StatusCode> {
    caller.note_repository(RepoNote {
        repository: name.clone(),
        operation: "delete_manifest",
        digest: Some(digest.clone()),
        ..RepoNote::default()
    });
    caller.require(ManagementAction::Write)?;
    let repo = repo_name(&name)?;
    let missing = || MgmtError::not_found(format!("no manifest {digest:?} in {name:?}"));
    let d: Digest = digest.parse().map_err(|_| missing())?;
    if !state
        .registry
        .meta()
        .delete_manifest(repo.as_str(), &d)
        .await?
    {
        return Err(missing());
    }
    tracing::info!(target: "berth::audit", operation = "Delete", principal = %caller.principal.reference(), repository = %name, digest = %digest, "manifest deleted via management API");
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a whole repository.
#[utoipa::path(delete, path = "/api/v1/repositories/{name}", tag = "repositories",
    params(("name" = String, Path, description = "repository name (may contain slashes)")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_repository(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.note_repository(RepoNote {
        repository: name.clone(),
        operation: "delete_repository",
        ..RepoNote::default()
    });
    caller.require(ManagementAction::Write)?;
    let repo = repo_name(&name)?;
    if !state
        .registry
        .meta()
        .delete_repository(repo.as_str())
        .await?
    {
        return Err(no_repo(&name));
    }
    tracing::info!(target: "berth::audit", operation = "DeleteRepository", principal = %caller.principal.reference(), repository = %name, "repository deleted via management API");
    Ok(StatusCode::NO_CONTENT)
}
