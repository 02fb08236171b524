//! Uploads on object storage: a state machine whose whole state is in the
//! session's database row, so any replica continues any session.
//!
//! A session's row carries, besides its acknowledged size:
//! * `multipart_id`: the store's multipart upload, created (and recorded at
//!   once) when the first full part is ready, targeting
//!   `uploads/<id>/blob`;
//! * `parts`: the id (ETag or block id) and size of every acknowledged part,
//!   each [`PART_BYTES`] long;
//! * `tail_key`/`tail_size`: the acknowledged bytes after the last part,
//!   fewer than a part, kept as a small staging object (S3 refuses parts
//!   under 5 MiB except the last, so a PATCH of any size is possible only if
//!   the remainder waits for the next one);
//! * `hash_state`: the running SHA-256 (or, for a monolithic push of a
//!   sha512 digest, SHA-512) over every acknowledged byte
//!   ([`ResumableHasher`]), so the digest is computed once, while receiving.
//!
//! A PATCH reads the tail into its part buffer, streams the body through
//! the hash into parts of [`PART_BYTES`] (one part uploading while the next
//! fills: at most two part buffers per upload), writes what is left as a
//! new tail object, and only then moves the row from the old state to the
//! new one with a compare-and-set on the size. A request that fails
//! half-way changes no row: its parts are overwritten by the next attempt
//! (same part number, S3) or never listed (random block ids, Azure), and
//! its tail object is an orphan the purge removes.
//!
//! The final PUT uploads the rest as the last part, checks the digest from
//! the hash state, completes the multipart upload to the staging key,
//! checks the staging object's size, copies it to the content address and
//! only then writes the blob's metadata row. A blob smaller than a part is
//! verified in memory and written to its content address with one atomic
//! PUT. Nothing is visible before its object is complete.

use berth_core::{Algorithm, Digest, ErrorCode, OciError};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::multipart::PartId;
use object_store::PutPayload;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::{is_not_found, os_err, ObjectBlobStore};
use crate::error::StoreError;
use crate::meta::{MetaStore, UploadRow};
use crate::resume_hash::ResumableHasher;
use crate::stream::ByteStream;

/// Size of every part but the last (S3 needs at least 5 MiB; with at most
/// 10,000 parts this bounds a blob at ~78 GiB).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// One acknowledged part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// The store's id for it (S3 ETag, Azure block id).
    pub id: String,
    /// Its length.
    pub size: u64,
}

/// The object-storage columns of an upload session row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectUploadState {
    /// The store's multipart upload id, once one was started.
    pub multipart_id: Option<String>,
    /// Acknowledged parts, in order.
    pub parts: Vec<PartRecord>,
    /// Key of the staging object holding the bytes after the last part.
    pub tail_key: Option<String>,
    /// Its length.
    pub tail_size: u64,
    /// The running hash of all acknowledged bytes (`None`: nothing yet,
    /// SHA-256 assumed).
    pub hash: Option<ResumableHasher>,
}

impl ObjectUploadState {
    /// A state for a monolithic upload of `algorithm`.
    pub fn for_algorithm(algorithm: Algorithm) -> ObjectUploadState {
        ObjectUploadState {
            hash: Some(ResumableHasher::new(algorithm)),
            ..Default::default()
        }
    }

    /// `parts` as stored (JSON).
    pub fn parts_json(&self) -> String {
        serde_json::to_string(&self.parts).unwrap_or_else(|_| "[]".into())
    }
}

fn staging_key(id: &str) -> String {
    format!("uploads/{id}/blob")
}

fn lost(id: &str) -> StoreError {
    StoreError::oci(
        ErrorCode::BlobUploadUnknown,
        format!("upload {id} lost its data; start a new upload"),
    )
}

/// What one request's body added.
pub(crate) struct Received {
    /// Bytes the body carried.
    pub written: u64,
    /// The state after it.
    pub state: ObjectUploadState,
    /// On a final request without a multipart upload: the whole blob.
    pub whole: Option<Bytes>,
}

/// A part upload under way.
type Inflight = JoinHandle<Result<PartId, object_store::Error>>;

async fn settle(
    inflight: &mut Option<(Inflight, u64)>,
    parts: &mut Vec<PartRecord>,
) -> Result<(), StoreError> {
    if let Some((handle, size)) = inflight.take() {
        let part = handle
            .await
            .map_err(|e| anyhow::anyhow!("part upload task failed: {e}"))?
            .map_err(os_err)?;
        parts.push(PartRecord {
            id: part.content_id,
            size,
        });
    }
    Ok(())
}

/// Start the multipart upload if the session has none yet, recording its id
/// in the row before any part is sent (so an abandoned one can be aborted).
async fn ensure_multipart(
    store: &ObjectBlobStore,
    meta: &MetaStore,
    id: &str,
    state: &mut ObjectUploadState,
) -> Result<String, StoreError> {
    if let Some(m) = &state.multipart_id {
        return Ok(m.clone());
    }
    let path = store.path(&staging_key(id));
    let mp = store
        .multipart()
        .create_multipart(&path)
        .await
        .map_err(os_err)?;
    if !meta.set_upload_multipart(id, &mp).await? {
        let _ = store.multipart().abort_multipart(&path, &mp).await;
        return Err(StoreError::oci(
            ErrorCode::BlobUploadInvalid,
            format!("upload {id} was changed by another request; retry from its current offset"),
        ));
    }
    state.multipart_id = Some(mp.clone());
    Ok(mp)
}

/// Stream `body` onto the session: see the module documentation. `last`:
/// the final request, whose remainder becomes the last part (or, without a
/// multipart upload, is returned whole) instead of a tail object.
pub(crate) async fn receive(
    store: &ObjectBlobStore,
    meta: &MetaStore,
    id: &str,
    prior: &ObjectUploadState,
    mut body: ByteStream,
    last: bool,
) -> Result<Received, StoreError> {
    let mut state = prior.clone();
    let mut hasher = state
        .hash
        .take()
        .unwrap_or_else(|| ResumableHasher::new(Algorithm::Sha256));
    let mut buf = BytesMut::with_capacity(PART_BYTES);
    if let Some(key) = &prior.tail_key {
        let got = store.store().get(&store.path(key)).await;
        let tail = match got {
            Ok(r) => r.bytes().await.map_err(os_err)?,
            Err(e) if is_not_found(&e) => return Err(lost(id)),
            Err(e) => return Err(os_err(e)),
        };
        if tail.len() as u64 != prior.tail_size {
            return Err(lost(id));
        }
        buf.extend_from_slice(&tail);
    }
    let staging = store.path(&staging_key(id));
    let mut inflight: Option<(Inflight, u64)> = None;
    let mut written = 0u64;
    let result: Result<(), StoreError> = async {
        while let Some(next) = body.next().await {
            let chunk = next.map_err(StoreError::Body)?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
            buf.extend_from_slice(&chunk);
            while buf.len() >= PART_BYTES {
                let part = buf.split_to(PART_BYTES).freeze();
                buf.reserve(PART_BYTES);
                settle(&mut inflight, &mut state.parts).await?;
                let mp = ensure_multipart(store, meta, id, &mut state).await?;
                let idx = state.parts.len();
                let mps = store.multipart().clone();
                let path = staging.clone();
                let handle = tokio::spawn(async move {
                    mps.put_part(&path, &mp, idx, PutPayload::from_bytes(part))
                        .await
                });
                inflight = Some((handle, PART_BYTES as u64));
            }
        }
        settle(&mut inflight, &mut state.parts).await
    }
    .await;
    if let Err(e) = result {
        if let Some((h, _)) = inflight.take() {
            h.abort();
        }
        return Err(e);
    }
    let rest = buf.freeze();
    let mut whole = None;
    state.tail_key = None;
    state.tail_size = 0;
    if last {
        match &state.multipart_id {
            Some(mp) if !rest.is_empty() => {
                let idx = state.parts.len();
                let part = store
                    .multipart()
                    .put_part(&staging, mp, idx, PutPayload::from_bytes(rest.clone()))
                    .await
                    .map_err(os_err)?;
                state.parts.push(PartRecord {
                    id: part.content_id,
                    size: rest.len() as u64,
                });
            }
            Some(_) => {}
            None => whole = Some(rest),
        }
    } else if !rest.is_empty() {
        let key = format!("uploads/{id}/tail-{}", uuid::Uuid::new_v4());
        store
            .store()
            .put(&store.path(&key), PutPayload::from_bytes(rest.clone()))
            .await
            .map_err(os_err)?;
        state.tail_key = Some(key);
        state.tail_size = rest.len() as u64;
    }
    state.hash = Some(hasher);
    Ok(Received {
        written,
        state,
        whole,
    })
}

/// Remove the objects of a finished or abandoned attempt's tail (best
/// effort: the purge removes what this misses).
pub(crate) async fn drop_tail(store: &ObjectBlobStore, key: Option<&str>) {
    if let Some(k) = key {
        if let Err(e) = store.delete_key(k).await {
            tracing::debug!(error = %e, key = k, "removing an upload tail failed; the purge retries");
        }
    }
}

/// Append a chunk: receive it, then move the row from `row`'s state to the
/// new one. Returns the new size.
pub(crate) async fn append(
    store: &ObjectBlobStore,
    meta: &MetaStore,
    row: &UploadRow,
    range: Option<(u64, u64)>,
    body: ByteStream,
) -> Result<u64, StoreError> {
    let got = receive(store, meta, &row.id, &row.object, body, false).await?;
    if let Some((start, end)) = range {
        if got.written != end - start + 1 {
            drop_tail(store, got.state.tail_key.as_deref()).await;
            return Err(StoreError::oci(
                ErrorCode::SizeInvalid,
                format!(
                    "Content-Range {start}-{end} announces {} bytes but {} were sent",
                    end - start + 1,
                    got.written
                ),
            ));
        }
    }
    let new_size = row.size + got.written;
    if !meta
        .save_object_upload(&row.id, row.size, new_size, &got.state)
        .await?
    {
        drop_tail(store, got.state.tail_key.as_deref()).await;
        return Err(StoreError::UploadRange { size: row.size });
    }
    if row.object.tail_key != got.state.tail_key {
        drop_tail(store, row.object.tail_key.as_deref()).await;
    }
    Ok(new_size)
}

fn digest_invalid(expected: &Digest, actual: &Digest) -> StoreError {
    StoreError::Oci(OciError::new(ErrorCode::DigestInvalid).detail(
        serde_json::json!({"expected": expected.to_string(), "actual": actual.to_string()}),
    ))
}

/// Hash an object with `algorithm` by streaming it (a session hashed with
/// SHA-256 finished with a sha512 digest).
async fn hash_object(
    store: &ObjectBlobStore,
    key: &str,
    algorithm: Algorithm,
) -> Result<Digest, StoreError> {
    let mut h = ResumableHasher::new(algorithm);
    let mut s = store
        .store()
        .get(&store.path(key))
        .await
        .map_err(os_err)?
        .into_stream();
    while let Some(chunk) = s.next().await {
        h.update(&chunk.map_err(os_err)?);
    }
    Ok(h.finish())
}

/// Finish a session with its last chunk: verify, place the blob at its
/// content address and write the metadata row. `expected_len`: the size a
/// monolithic request announced. Returns the blob's size. On a digest or
/// size mismatch the session's objects are removed and nothing is stored.
pub(crate) async fn finish(
    store: &ObjectBlobStore,
    meta: &MetaStore,
    row: &UploadRow,
    range: Option<(u64, u64)>,
    body: ByteStream,
    digest: &Digest,
    expected_len: Option<u64>,
) -> Result<u64, StoreError> {
    let got = receive(store, meta, &row.id, &row.object, body, true).await?;
    let size = row.size + got.written;
    let announced = match range {
        Some((start, end)) => Some(end - start + 1).filter(|&n| n != got.written),
        None => None,
    };
    if announced.is_some() || expected_len.is_some_and(|l| l != size) {
        discard_attempt(store, row, &got.state).await;
        return Err(StoreError::oci(
            ErrorCode::SizeInvalid,
            format!("the request announced a different length than the {size} bytes received"),
        ));
    }
    let target = ObjectBlobStore::blob_key(digest);
    let hashed = got
        .state
        .hash
        .clone()
        .unwrap_or_else(|| ResumableHasher::new(Algorithm::Sha256));
    let same_alg = hashed.algorithm() == digest.algorithm();
    if let Some(whole) = got.whole {
        // Smaller than a part: verify in memory, one atomic PUT.
        let actual = if same_alg {
            hashed.finish()
        } else {
            Digest::compute(digest.algorithm(), &whole)
        };
        if &actual != digest {
            discard(store, &row.object, &row.id).await;
            return Err(digest_invalid(digest, &actual));
        }
        store
            .store()
            .put(&store.path(&target), PutPayload::from_bytes(whole))
            .await
            .map_err(os_err)?;
    } else {
        if same_alg {
            let actual = hashed.finish();
            if &actual != digest {
                discard_attempt(store, row, &got.state).await;
                return Err(digest_invalid(digest, &actual));
            }
        }
        let staging = staging_key(&row.id);
        let mp = got.state.multipart_id.clone().unwrap_or_default();
        let parts: Vec<PartId> = got
            .state
            .parts
            .iter()
            .map(|p| PartId {
                content_id: p.id.clone(),
            })
            .collect();
        let staged = store.path(&staging);
        if let Err(e) = store
            .multipart()
            .complete_multipart(&staged, &mp, parts)
            .await
        {
            // A retried PUT after a completion whose answer was lost finds
            // the staging object already there.
            match store.store().head(&staged).await {
                Ok(m) if m.size == size => {}
                _ => return Err(os_err(e)),
            }
        }
        match store.store().head(&staged).await {
            Ok(m) if m.size == size => {}
            Ok(m) => {
                discard_attempt(store, row, &got.state).await;
                return Err(StoreError::Internal(anyhow::anyhow!(
                    "upload {} completed with {} bytes instead of {size}",
                    row.id,
                    m.size
                )));
            }
            Err(e) => return Err(os_err(e)),
        }
        if !same_alg {
            let actual = hash_object(store, &staging, digest.algorithm()).await?;
            if &actual != digest {
                discard_attempt(store, row, &got.state).await;
                return Err(digest_invalid(digest, &actual));
            }
        }
        store
            .store()
            .copy(&staged, &store.path(&target))
            .await
            .map_err(os_err)?;
    }
    // Checked again under the blob's row lock: the collector may have
    // deleted an older copy of the same digest just now.
    meta.commit_blob(&row.repository, digest, size, Some(&row.id), || async {
        Ok(store.stat_blob(digest).await?.is_some())
    })
    .await?;
    // Only now that the session row is gone may its objects go: a replica
    // killed before the commit leaves the session whole, so a retried PUT
    // on another replica still finds its tail (and staging object). What a
    // kill between commit and clean-up leaves, the orphan purge removes.
    if got.state.multipart_id.is_some() {
        let _ = store.delete_key(&staging_key(&row.id)).await;
    }
    drop_tail(store, row.object.tail_key.as_deref()).await;
    Ok(size)
}

/// A finishing request failed for good: remove what the session had (its
/// recorded tail) and what this request added (a multipart upload it
/// started, parts).
async fn discard_attempt(store: &ObjectBlobStore, row: &UploadRow, state: &ObjectUploadState) {
    discard(store, state, &row.id).await;
    drop_tail(store, row.object.tail_key.as_deref()).await;
}

/// Remove everything a session left on the store: abort its multipart
/// upload, delete its tail and staging objects. Errors are logged (the
/// purge finds leftovers by listing).
pub(crate) async fn discard(store: &ObjectBlobStore, state: &ObjectUploadState, id: &str) {
    let staging = staging_key(id);
    if let Some(mp) = &state.multipart_id {
        if let Err(e) = store
            .multipart()
            .abort_multipart(&store.path(&staging), mp)
            .await
        {
            if !is_not_found(&e) {
                tracing::debug!(error = %e, upload = id, "aborting a multipart upload failed");
            }
        }
    }
    drop_tail(store, state.tail_key.as_deref()).await;
    let _ = store.delete_key(&staging).await;
}

/// Remove staging objects under `uploads/` that no live session refers to
/// and that are older than `grace_ms` (left by crashes, failed requests or
/// expired sessions). `live` maps each session id to its recorded tail key.
pub(crate) async fn purge_orphans(
    store: &ObjectBlobStore,
    live: &std::collections::HashMap<String, Option<String>>,
    grace_ms: i64,
) -> Result<usize, StoreError> {
    let now = crate::now_ms();
    let mut removed = 0;
    for obj in store.list("uploads").await? {
        let mut parts = obj.key.splitn(3, '/');
        let (Some("uploads"), Some(session), name) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let referenced = match live.get(session) {
            None => false,
            Some(tail) => name == Some("blob") || tail.as_deref() == Some(obj.key.as_str()),
        };
        if referenced || now - obj.modified_ms < grace_ms {
            continue;
        }
        store.delete_key(&obj.key).await?;
        removed += 1;
    }
    Ok(removed)
}
