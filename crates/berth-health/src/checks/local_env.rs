//! Step 1: the local environment — which registry clients are installed,
//! their versions, and whether docker reaches its daemon.

use crate::report::{Finding, Status};
use crate::tools::{find_version, run, ToolRun};

/// The oldest docker client that speaks the token flow berth needs.
const MIN_DOCKER: (u32, u32) = (18, 3);

/// A client other than docker: its program, version arguments and the
/// code reported when it is missing.
struct OtherTool {
    program: &'static str,
    args: &'static [&'static str],
    missing_code: &'static str,
}

const OTHERS: [OtherTool; 4] = [
    OtherTool {
        program: "podman",
        args: &["--version"],
        missing_code: "PODMAN_COMMAND_WARNING",
    },
    OtherTool {
        program: "skopeo",
        args: &["--version"],
        missing_code: "SKOPEO_COMMAND_WARNING",
    },
    OtherTool {
        program: "helm",
        args: &["version", "--short"],
        missing_code: "HELM_COMMAND_ERROR",
    },
    OtherTool {
        program: "oras",
        args: &["version"],
        missing_code: "ORAS_COMMAND_WARNING",
    },
];

fn tool_finding(tool: &OtherTool, outcome: &ToolRun) -> (Finding, bool) {
    let text = match outcome {
        ToolRun::Ran { stdout, stderr, .. } => format!("{stdout}\n{stderr}"),
        _ => String::new(),
    };
    match (outcome, find_version(&text)) {
        (ToolRun::Ran { .. }, Some((v, _, _))) => (
            Finding::ok(tool.program, format!("{} {v}", tool.program)),
            true,
        ),
        (ToolRun::Missing, _) => (
            Finding::problem(
                tool.program,
                tool.missing_code,
                format!("{} is not on PATH", tool.program),
            ),
            false,
        ),
        (ToolRun::Failed(e), _) => (
            Finding::problem(tool.program, tool.missing_code, e.clone()),
            false,
        ),
        (ToolRun::Ran { .. }, None) => (
            Finding::problem(
                tool.program,
                tool.missing_code,
                format!(
                    "`{} {}` printed no version: {}",
                    tool.program,
                    tool.args.join(" "),
                    text.trim()
                ),
            ),
            false,
        ),
    }
}

/// Clients present, versions, docker daemon.
pub async fn check() -> Vec<Finding> {
    let (docker_version, docker_info, podman, skopeo, helm, oras) = tokio::join!(
        run("docker", &["version", "--format", "{{.Client.Version}}"]),
        run("docker", &["info", "--format", "{{.ServerVersion}}"]),
        run(OTHERS[0].program, OTHERS[0].args),
        run(OTHERS[1].program, OTHERS[1].args),
        run(OTHERS[2].program, OTHERS[2].args),
        run(OTHERS[3].program, OTHERS[3].args),
    );
    let mut others = Vec::new();
    let mut other_client = false;
    for (tool, outcome) in OTHERS.iter().zip([&podman, &skopeo, &helm, &oras]) {
        let (finding, usable) = tool_finding(tool, outcome);
        // helm pushes charts only; it does not replace an image client.
        other_client |= usable && tool.program != "helm";
        others.push(finding);
    }
    // Docker problems block this machine only when no other client exists.
    let docker_severity = |f: Finding| {
        if other_client {
            f.with_status(Status::Warning)
        } else {
            f
        }
    };
    let mut out = Vec::new();
    match &docker_version {
        ToolRun::Missing => out.push(docker_severity(Finding::problem(
            "docker",
            "DOCKER_COMMAND_ERROR",
            "docker is not on PATH",
        ))),
        ToolRun::Failed(e) => out.push(docker_severity(Finding::problem(
            "docker",
            "DOCKER_COMMAND_ERROR",
            e.clone(),
        ))),
        ToolRun::Ran { stdout, .. } => {
            out.push(Finding::ok("docker", "docker is on PATH"));
            out.push(match &docker_info {
                ToolRun::Ran {
                    success: true,
                    stdout: server,
                    ..
                } if !server.is_empty() => {
                    Finding::ok("docker daemon", format!("daemon {server} reachable"))
                }
                ToolRun::Ran { stderr, stdout, .. } => docker_severity(Finding::problem(
                    "docker daemon",
                    "DOCKER_DAEMON_ERROR",
                    format!(
                        "docker cannot reach its daemon: {}",
                        first_line(stderr, stdout)
                    ),
                )),
                ToolRun::Failed(e) => docker_severity(Finding::problem(
                    "docker daemon",
                    "DOCKER_DAEMON_ERROR",
                    e.clone(),
                )),
                ToolRun::Missing => docker_severity(Finding::problem(
                    "docker daemon",
                    "DOCKER_DAEMON_ERROR",
                    "docker disappeared from PATH",
                )),
            });
            out.push(match find_version(stdout) {
                Some((v, major, minor)) if (major, minor) >= MIN_DOCKER => {
                    Finding::ok("docker version", format!("docker client {v}"))
                }
                Some((v, _, _)) => docker_severity(Finding::problem(
                    "docker version",
                    "DOCKER_VERSION_ERROR",
                    format!("docker client {v} is older than 18.03"),
                )),
                None => docker_severity(Finding::problem(
                    "docker version",
                    "DOCKER_VERSION_ERROR",
                    format!("cannot read the docker client version from {stdout:?}"),
                )),
            });
        }
    }
    out.extend(others);
    out
}

fn first_line<'a>(a: &'a str, b: &'a str) -> &'a str {
    let text = if a.is_empty() { b } else { a };
    text.lines().next().unwrap_or("no output")
}
