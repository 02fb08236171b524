//! Audit events and explainable refusals (issue 5).
//!
//! * [`context`]: the per-request draft ([`RequestAudit`]) the login paths,
//!   the `/v2` gate and the repository handlers fill in.
//! * [`layer`]: the request layer that turns a finished request's draft
//!   into login and repository events, stores an explain record for every
//!   401/403 and puts the correlation id into the refusal's body.
//! * [`recorder`]: the bounded buffer and the background writer (batched
//!   inserts, JSON-lines stream, retention pruning), off the request path.

pub mod context;
pub mod layer;
pub mod recorder;

pub use context::{identity_of, RepoNote, RequestAudit};
pub use recorder::{AuditConfig, Recorder, RecorderTask, StreamTarget};
