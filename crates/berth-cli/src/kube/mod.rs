//! Pulls from Kubernetes: the kubelet image credential provider plugin
//! (`berth kubelet-credential-provider`), image pull secrets (`berth
//! pull-secret create`), and what both share with `berth check-health`:
//! kubelet's credential matching rules, image references, and the
//! Kubernetes document types.

pub mod api;
pub mod image;
pub mod matching;
pub mod provider;
pub mod pull_secret;
