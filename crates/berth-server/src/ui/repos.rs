//! Repositories: the list (search, tag counts, sizes, last push), a
//! repository's tags (newest first, paged), a manifest's detail (layers,
//! platforms, annotations, referrers, pull commands) and deletes with a
//! confirmation page.
//!
//! Who sees what: Readers and above (the management API's read right) see
//! every repository; other signed-in identities see the repositories they
//! may pull; anonymous visitors, only when anonymous pull is on, may open
//! a repository by name (anonymous pull does not include the catalog).
//! Deleting calls the management API's handlers, so it needs their write
//! right (Contributor or Owner).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use berth_core::explain::record::text;
use berth_core::{Digest, Reference, RepositoryName};
use berth_store::BlobRead;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::layout::{self, copyable, q, short_digest, size, time_ms, Page};
use super::{UiState, Viewer};
use crate::api;

/// Tags per page.
pub const TAGS_PER_PAGE: usize = 50;
/// Most repositories listed.
const MAX_LISTED: i64 = 1000;
/// Config blobs larger than this are not read for the created time.
const MAX_CONFIG: u64 = 256 * 1024;

/// Anonymous visitors get nothing when anonymous pull is off.
fn gate(viewer: &Viewer) -> Result<(), Response> {
    if viewer.signed_in() || viewer.anonymous_pull() {
        Ok(())
    } else {
        Err(Redirect::to("/ui/login").into_response())
    }
}

/// The same answer for "no such repository" and "not yours to see".
fn no_repository() -> Response {
    layout::error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "No such repository, or you may not see it.",
    )
}

/// `GET /ui/repositories` query.
#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
}

/// `GET /ui/repositories`.
pub async fn list(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(r) = gate(&viewer) {
        return r;
    }
    let lookup = html! {
        form.search method="get" action="/ui/repository" role="search" {
            label for="open" { "Open a repository by name" }
            div.row {
                input #open type="text" name="name" placeholder="library/alpine" required;
                button type="submit" { "Open" }
            }
        }
    };
    let listing = if viewer.signed_in() {
        let rows = match state
            .portal
            .repository_summaries(Some(&query.q), MAX_LISTED)
            .await
        {
            Ok(r) => r,
            Err(e) => return layout::api_error(e.into()),
        };
        let all = viewer.may_list();
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| all || viewer.may_view(&r.name))
            .collect();
        Some(html! {
            form.search method="get" action="/ui/repositories" role="search" {
                label for="q" { "Search repositories" }
                div.row {
                    input #q type="search" name="q" value=(query.q) placeholder="name contains…";
                    button type="submit" { "Search" }
                }
            }
            @if rows.is_empty() {
                p.muted { "No repositories" @if !query.q.is_empty() { " match " q { (query.q) } } "." }
            } @else {
                div.tablewrap {
                    table #repositories {
                        caption { (rows.len()) " repositories" }
                        thead { tr { th { "Repository" } th.num { "Tags" } th.num { "Manifests" } th.num { "Size" } th { "Last push" } } }
                        tbody {
                            @for r in &rows {
                                tr {
                                    td { a href={ "/ui/repository?name=" (q(&r.name)) } { (r.name) } }
                                    td.num { (r.tags) }
                                    td.num { (r.manifests) }
                                    td.num { (size(r.size)) }
                                    td { (time_ms(r.last_push)) }
                                }
                            }
                        }
                    }
                }
            }
        })
    } else {
        None
    };
    let body = html! {
        h1 { "Repositories" }
        @if let Some(l) = listing { (l) } @else {
            p { "Anonymous pull is on: open a repository by its name. "
                a href="/ui/login" { "Sign in" } " to see the list." }
        }
        (lookup)
    };
    layout::render(&viewer, Page::Repositories, "Repositories", body)
}

/// `GET /ui/repository` query.
#[derive(Deserialize)]
pub struct RepoQuery {
    name: String,
    #[serde(default)]
    page: usize,
}

fn pull_commands(login_server: &str, repo: &str, reference: &str) -> Markup {
    let sep = if reference.contains(':') { "@" } else { ":" };
    let target = format!("{login_server}/{repo}{sep}{reference}");
    html! {
        div.commands {
            (copyable("docker", &format!("docker pull {target}")))
            (copyable("oras", &format!("oras pull {target}")))
        }
    }
}

/// `GET /ui/repository?name=…&page=…`: its tags, newest first.
pub async fn repository(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(query): Query<RepoQuery>,
) -> Response {
    if let Err(r) = gate(&viewer) {
        return r;
    }
    let name = query.name.trim();
    if name.parse::<RepositoryName>().is_err() || !viewer.may_view(name) {
        return no_repository();
    }
    let mut tags = match state.api.registry.meta().tag_details(name).await {
        Ok(Some(t)) => t,
        Ok(None) => return no_repository(),
        Err(e) => return layout::api_error(e.into()),
    };
    tags.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.name.cmp(&b.name)));
    let pages = tags.len().div_ceil(TAGS_PER_PAGE).max(1);
    let page = query.page.min(pages - 1);
    let shown = tags.iter().skip(page * TAGS_PER_PAGE).take(TAGS_PER_PAGE);
    let may_delete = viewer.signed_in() && viewer.may_delete(name);
    let login_server = &state.api.auth.settings.login_server;
    let base = format!("/ui/repository?name={}", q(name));
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/repositories" { "Repositories" } " / " span { (name) } }
        h1 { (name) }
        p.muted { (tags.len()) " tags · "
            @if viewer.may(berth_auth::authorize::ManagementAction::Read) {
                a href={ "/ui/activity/repository?name=" (q(name)) } { "Activity" }
            } }
        @if tags.is_empty() {
            p.muted { "No tags." }
        } @else {
            div.tablewrap {
                table #tags {
                    caption { "Tags, newest first (page " (page + 1) " of " (pages) ")" }
                    thead { tr { th { "Tag" } th { "Digest" } th { "Media type" } th.num { "Size" } th { "Pushed" } th { "Tagged" } @if may_delete { th { span.sr { "Actions" } } } } }
                    tbody {
                        @for t in shown {
                            tr {
                                td { a.tag href={ "/ui/manifest?name=" (q(name)) "&ref=" (q(&t.name)) } { (t.name) } }
                                td { a href={ "/ui/manifest?name=" (q(name)) "&ref=" (q(&t.digest)) } { code { (short_digest(&t.digest)) } } }
                                td.mt { (t.media_type) }
                                td.num { (size(t.size)) }
                                td { (time_ms(t.created_at)) }
                                td { (time_ms(t.updated_at)) }
                                @if may_delete {
                                    td { a.danger href={ "/ui/delete?name=" (q(name)) "&tag=" (q(&t.name)) } aria-label={ "Delete tag " (t.name) } { "Delete" } }
                                }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Pages" {
                    @if page > 0 { a href={ (base) "&page=" (page - 1) } rel="prev" { "← Newer" } }
                    span { "Page " (page + 1) " of " (pages) }
                    @if page + 1 < pages { a href={ (base) "&page=" (page + 1) } rel="next" { "Older →" } }
                }
            }
            @if let Some(newest) = tags.first() {
                h2 { "Pull the newest tag" }
                (pull_commands(login_server, name, &newest.name))
            }
        }
    };
    layout::render(&viewer, Page::Repositories, name, body)
}

/// `GET /ui/manifest` query.
#[derive(Deserialize)]
pub struct ManifestQuery {
    name: String,
    #[serde(rename = "ref")]
    reference: String,
}

/// Read a small config blob as JSON.
async fn config_json(state: &UiState, repo: &RepositoryName, digest: &str) -> Option<Value> {
    let d: Digest = digest.parse().ok()?;
    let read = state.api.registry.read_blob(repo, &d).await.ok()??;
    let bytes = match read {
        BlobRead::Bytes(b) => b.to_vec(),
        BlobRead::File { file, size } if size <= MAX_CONFIG => {
            let mut buf = Vec::with_capacity(usize::try_from(size).ok()?);
            file.take(MAX_CONFIG).read_to_end(&mut buf).await.ok()?;
            buf
        }
        BlobRead::Object(obj) if obj.size() <= MAX_CONFIG => {
            use futures::TryStreamExt as _;
            let mut stream = obj.open(0, obj.size()).await.ok()?;
            let mut buf = Vec::with_capacity(usize::try_from(obj.size()).ok()?);
            while let Some(chunk) = stream.try_next().await.ok()? {
                buf.extend_from_slice(&chunk);
            }
            buf
        }
        BlobRead::File { .. } | BlobRead::Object(_) => return None,
    };
    serde_json::from_slice(&bytes).ok()
}

fn annotations_table(id: &str, a: Option<&serde_json::Map<String, Value>>) -> Markup {
    html! {
        @match a {
            Some(map) if !map.is_empty() => {
                dl.annotations #(id) {
                    @for (k, v) in map {
                        dt { (k) } dd { (text(v)) }
                    }
                }
            }
            _ => { p.muted { "None." } }
        }
    }
}

/// `GET /ui/manifest?name=…&ref=…`: one manifest in full.
pub async fn manifest(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(query): Query<ManifestQuery>,
) -> Response {
    if let Err(r) = gate(&viewer) {
        return r;
    }
    let name = query.name.trim();
    let (Ok(repo), Ok(reference)) = (
        name.parse::<RepositoryName>(),
        query.reference.parse::<Reference>(),
    ) else {
        return no_repository();
    };
    if !viewer.may_view(name) {
        return no_repository();
    }
    let stored = match state.api.registry.get_manifest(&repo, &reference).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return layout::error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "No such manifest in this repository.",
            )
        }
        Err(e) => return layout::api_error(e.into()),
    };
    let digest = stored.digest.to_string();
    let doc: Value = serde_json::from_slice(&stored.content).unwrap_or(Value::Null);
    let meta = state.api.registry.meta();
    let detail = match meta.manifest_details(name).await {
        Ok(list) => list
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.digest == digest),
        Err(e) => return layout::api_error(e.into()),
    };
    let referrers = match meta.referrers(name, &stored.digest, None).await {
        Ok(r) => r,
        Err(e) => return layout::api_error(e.into()),
    };
    let mut by_type: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for r in referrers {
        let t = r
            .artifact_type
            .clone()
            .unwrap_or_else(|| r.media_type.clone());
        by_type.entry(t).or_default().push(r);
    }
    let config_digest = doc["config"]["digest"].as_str().map(str::to_string);
    let config = match &config_digest {
        Some(d) => config_json(&state, &repo, d).await,
        None => None,
    };
    let created = config
        .as_ref()
        .and_then(|c| c["created"].as_str().map(str::to_string))
        .or_else(|| {
            doc["annotations"]["org.opencontainers.image.created"]
                .as_str()
                .map(str::to_string)
        });
    let layers = doc["layers"].as_array().cloned().unwrap_or_default();
    let children = doc["manifests"].as_array().cloned().unwrap_or_default();
    let tags = detail.as_ref().map(|d| d.tags.clone()).unwrap_or_default();
    let artifact_type = doc["artifactType"]
        .as_str()
        .map(str::to_string)
        .or_else(|| detail.as_ref().and_then(|d| d.artifact_type.clone()));
    let may_delete = viewer.signed_in() && viewer.may_delete(name);
    let login_server = &state.api.auth.settings.login_server;
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/repositories" { "Repositories" } " / "
            a href={ "/ui/repository?name=" (q(name)) } { (name) } " / "
            span { (short_digest(&digest)) }
        }
        h1 { (name) @if let Reference::Tag(t) = &reference { ":" (t.as_str()) } }
        dl.facts #facts {
            dt { "Digest" } dd { code #digest { (digest) } }
            dt { "Media type" } dd { (stored.media_type) }
            @if let Some(a) = &artifact_type { dt { "Artifact type" } dd { (a) } }
            dt { "Size" } dd { (size(stored.content.len() as i64)) " (" (stored.content.len()) " bytes)" }
            dt { "Pushed" } dd { (detail.as_ref().map_or("-".to_string(), |d| time_ms(d.created_at))) }
            dt { "Created" } dd { (created.unwrap_or_else(|| "-".into())) }
            @if let Some(c) = &config {
                @if let Some(os) = c["os"].as_str() {
                    dt { "Platform" } dd { (os) "/" (text(&c["architecture"])) @if let Some(v) = c["variant"].as_str() { "/" (v) } }
                }
            }
            dt { "Tags" } dd.tags {
                @if tags.is_empty() { "untagged" }
                @for t in &tags { span.tag { (t) } " " }
            }
            @if let Some(s) = doc["subject"]["digest"].as_str() {
                dt { "Subject" } dd { a href={ "/ui/manifest?name=" (q(name)) "&ref=" (q(s)) } { code { (s) } } }
            }
        }
        h2 { "Pull" }
        (pull_commands(login_server, name, &digest))
        @if !children.is_empty() {
            h2 { "Platforms" }
            div.tablewrap { table #platforms {
                thead { tr { th { "Platform" } th { "Digest" } th { "Media type" } th.num { "Size" } } }
                tbody { @for m in &children {
                    tr {
                        td { (text(&m["platform"]["os"])) "/" (text(&m["platform"]["architecture"]))
                            @if let Some(v) = m["platform"]["variant"].as_str() { "/" (v) } }
                        td { a href={ "/ui/manifest?name=" (q(name)) "&ref=" (q(&text(&m["digest"]))) } { code { (short_digest(&text(&m["digest"]))) } } }
                        td.mt { (text(&m["mediaType"])) }
                        td.num { (size(m["size"].as_i64().unwrap_or(0))) }
                    }
                } }
            } }
        }
        @if let Some(c) = &config_digest {
            h2 { "Config" }
            p { code { (c) } " · " (text(&doc["config"]["mediaType"])) }
        }
        @if !layers.is_empty() {
            h2 { "Layers" }
            div.tablewrap { table #layers {
                thead { tr { th { "#" } th { "Digest" } th { "Media type" } th.num { "Size" } } }
                tbody { @for (i, l) in layers.iter().enumerate() {
                    tr { td.num { (i + 1) } td { code { (short_digest(&text(&l["digest"]))) } } td.mt { (text(&l["mediaType"])) } td.num { (size(l["size"].as_i64().unwrap_or(0))) } }
                } }
            } }
        }
        h2 { "Annotations" }
        (annotations_table("annotations", doc["annotations"].as_object()))
        h2 { "Referrers" }
        @if by_type.is_empty() { p.muted { "No signatures, SBOMs or other artifacts refer to this manifest." } }
        @for (t, list) in &by_type {
            h3 { (t) }
            ul.referrers { @for r in list {
                li { a href={ "/ui/manifest?name=" (q(name)) "&ref=" (q(&r.digest.to_string())) } { code { (short_digest(&r.digest.to_string())) } } " · " (size(r.size)) }
            } }
        }
        @if may_delete {
            h2 { "Delete" }
            p { a.danger.button href={ "/ui/delete?name=" (q(name)) "&digest=" (q(&digest)) } { "Delete this manifest and its tags…" } }
        }
    };
    layout::render(&viewer, Page::Repositories, name, body)
}

/// What to delete.
#[derive(Deserialize)]
pub struct DeleteTarget {
    name: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// `GET /ui/delete?name=…&tag=…|digest=…`: the confirmation page.
pub async fn confirm_delete(viewer: Viewer, Query(t): Query<DeleteTarget>) -> Response {
    if let Err(r) = viewer.require_signed_in() {
        return r;
    }
    if !viewer.may_delete(&t.name) {
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Deleting needs the Contributor or Owner role.",
        );
    }
    let what = match (&t.tag, &t.digest) {
        (Some(tag), None) => format!("the tag {tag} (the manifest stays)"),
        (None, Some(d)) => format!("the manifest {d} and every tag pointing at it"),
        _ => {
            return layout::error_page(
                StatusCode::BAD_REQUEST,
                "Invalid input",
                "Name a tag or a digest.",
            )
        }
    };
    let body = html! {
        section.card.confirm {
            h1 { "Delete from " (t.name) "?" }
            p { "This deletes " strong { (what) } ". It cannot be undone." }
            form method="post" action="/ui/delete" {
                input type="hidden" name="csrf" value=(viewer.csrf());
                input type="hidden" name="name" value=(t.name);
                @if let Some(tag) = &t.tag { input type="hidden" name="tag" value=(tag); }
                @if let Some(d) = &t.digest { input type="hidden" name="digest" value=(d); }
                div.row {
                    button.danger #confirm-delete type="submit" { "Delete" }
                    a.button href={ "/ui/repository?name=" (q(&t.name)) } { "Cancel" }
                }
            }
        }
    };
    layout::render(&viewer, Page::Repositories, "Confirm delete", body)
}

/// `POST /ui/delete`: delete through the management API's handlers.
pub async fn delete(
    State(state): State<UiState>,
    viewer: Viewer,
    Form(t): Form<DeleteTarget>,
) -> Response {
    if let Err(r) = viewer.check_csrf(&t.csrf) {
        return r;
    }
    let api_state = State(state.api.clone());
    let result = match (&t.tag, &t.digest) {
        (Some(tag), None) => {
            api::repositories::untag(
                api_state,
                viewer.caller(),
                Path((t.name.clone(), tag.clone())),
            )
            .await
        }
        (None, Some(d)) => {
            api::repositories::delete_manifest(
                api_state,
                viewer.caller(),
                Path((t.name.clone(), d.clone())),
            )
            .await
        }
        _ => {
            return layout::error_page(
                StatusCode::BAD_REQUEST,
                "Invalid input",
                "Name a tag or a digest.",
            )
        }
    };
    match result {
        Ok(_) => Redirect::to(&format!("/ui/repository?name={}", q(&t.name))).into_response(),
        Err(e) => layout::api_error(e),
    }
}
