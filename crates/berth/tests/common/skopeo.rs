//! skopeo plumbing shared by the interop and login tests.

use std::path::{Path, PathBuf};

/// Whether skopeo can be run. Missing skopeo skips the caller with a
/// printed notice, except under CI (`CI` set), where it is a failure: CI
/// installs it.
pub fn skopeo_available() -> bool {
    if super::on_path("skopeo") {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("skopeo is not on PATH, but CI is set: CI must install skopeo for interop tests");
    }
    eprintln!("SKIPPED: skopeo is not on PATH; skopeo tests did not run");
    false
}

/// A signature policy accepting anything, written into `dir`.
pub fn write_policy(dir: &Path) -> PathBuf {
    let p = dir.join("policy.json");
    std::fs::write(&p, br#"{"default":[{"type":"insecureAcceptAnything"}]}"#)
        .expect("write policy");
    p
}
