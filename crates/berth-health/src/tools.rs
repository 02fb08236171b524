//! Finding and running local programs, with a time limit.

use std::path::PathBuf;
use std::time::Duration;

/// How long a local program may take to answer.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(3);

/// The first executable file named `program` in a PATH directory.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// What running a program gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolRun {
    /// Not on PATH.
    Missing,
    /// Could not be started or timed out.
    Failed(String),
    /// Ran to completion.
    Ran {
        /// Exit status 0.
        success: bool,
        /// Standard output.
        stdout: String,
        /// Standard error.
        stderr: String,
    },
}

/// Run `program args…` (no stdin) for at most [`TOOL_TIMEOUT`].
pub async fn run(program: &str, args: &[&str]) -> ToolRun {
    if on_path(program).is_none() {
        return ToolRun::Missing;
    }
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return ToolRun::Failed(format!("cannot run {program}: {e}")),
    };
    match tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output()).await {
        Err(_) => ToolRun::Failed(format!(
            "`{program} {}` did not finish within {} s",
            args.join(" "),
            TOOL_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => ToolRun::Failed(format!("{program}: {e}")),
        Ok(Ok(out)) => ToolRun::Ran {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        },
    }
}

/// The first `MAJOR.MINOR[.PATCH…]` in `text`, with major and minor.
pub fn find_version(text: &str) -> Option<(String, u32, u32)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit()
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'v')
        {
            let end = text[i..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .map_or(text.len(), |n| i + n);
            let candidate = text[i..end].trim_end_matches('.');
            let mut parts = candidate.split('.');
            if let (Some(a), Some(b)) = (parts.next(), parts.next()) {
                if let (Ok(major), Ok(minor)) = (a.parse(), b.parse()) {
                    return Some((candidate.to_string(), major, minor));
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versions() {
        assert_eq!(
            find_version("skopeo version 1.9.3"),
            Some(("1.9.3".into(), 1, 9))
        );
        assert_eq!(
            find_version("v3.12.0+gc9f554d"),
            Some(("3.12.0".into(), 3, 12))
        );
        assert_eq!(find_version("28.2.2"), Some(("28.2.2".into(), 28, 2)));
        assert_eq!(
            find_version("Version: 1.1.0\nGo: 1.21"),
            Some(("1.1.0".into(), 1, 1))
        );
        assert_eq!(find_version("no version here"), None);
        assert_eq!(find_version("x86_64 17"), None);
    }

    #[tokio::test]
    async fn missing_programs_are_reported_as_missing() {
        assert_eq!(
            run("berth-no-such-program-xyz", &[]).await,
            ToolRun::Missing
        );
    }
}
