//! Real container clients against a real `berth serve`: a private Docker
//! engine ([`Dockerd`]) with its own data root, exec root, socket and
//! pidfile, stopped by PID when dropped; the docker CLI bound to it with
//! each test's own `DOCKER_CONFIG` ([`DockerCli`]); containerd's `ctr`
//! talking to the containerd that dockerd supervises; podman with private
//! storage ([`Podman`]).
//!
//! The engine runs with `--storage-driver vfs --iptables=false
//! --bridge=none`: no overlay mounts, no firewall or network changes, so it
//! works in an unprivileged-network CI container. Docker treats
//! 127.0.0.0/8 as an insecure registry, so plain HTTP on loopback needs no
//! `--insecure-registry`. nextest runs every test in its own process, so
//! every test starts its own engine (about a second) and nothing is shared.
//!
//! Images are built locally (`FROM scratch` plus two `COPY` lines, so two
//! layers): there is no registry to pull base images from.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::cli::CliEnv;
use super::random_suffix;

/// How long the engine may take to answer on its socket.
const DOCKERD_STARTUP: Duration = Duration::from_secs(60);
/// How long it may take to stop after SIGTERM before it is killed.
const DOCKERD_STOP: Duration = Duration::from_secs(20);

/// A private `dockerd` (and the containerd it supervises).
pub struct Dockerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Start an engine in a fresh directory and wait until `docker version`
    /// answers through its socket.
    pub fn start() -> Dockerd {
        // Short path: the containerd socket under the exec root must fit
        // in a unix socket address (108 bytes).
        let dir = tempfile::Builder::new()
            .prefix("bdk-")
            .tempdir_in("/tmp")
            .expect("dockerd dir");
        for sub in ["data", "exec"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("dockerd log");
        let log_err = log.try_clone().expect("clone log");
        let root = dir.path();
        let child = Command::new("dockerd")
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--iptables=false")
            .arg("--ip6tables=false")
            .arg("--ip-masq=false")
            .arg("--bridge=none")
            .arg("--userland-proxy=false")
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", root.join("docker.sock").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .expect("spawn dockerd (is docker.io installed? scripts/test.sh installs it)");
        let mut d = Dockerd {
            child: Some(child),
            dir,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "dockerd exited during start-up ({status}):\n{}",
                    self.log_tail()
                );
            }
            if self.socket().exists() {
                let out = Command::new("docker")
                    .args(["version", "--format", "{{.Server.Version}}"])
                    .env("DOCKER_HOST", self.host())
                    .env("DOCKER_CONFIG", self.dir.path().join("probe-config"))
                    .output()
                    .expect("run docker version");
                if out.status.success() {
                    eprintln!(
                        "dockerd {} ready after {:?}",
                        String::from_utf8_lossy(&out.stdout).trim(),
                        started.elapsed()
                    );
                    return;
                }
            }
            if started.elapsed() > DOCKERD_STARTUP {
                panic!(
                    "dockerd did not answer within {DOCKERD_STARTUP:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The engine's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// `unix://…`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The socket of the containerd this dockerd started (for `ctr -a`).
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.path().join("exec/containerd/containerd.sock")
    }

    /// The last part of the engine's log.
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let start = s.len().saturating_sub(6000);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s[start..].to_string()
    }

    /// A docker CLI bound to this engine, with its own HOME/DOCKER_CONFIG.
    pub fn cli(&self) -> DockerCli {
        DockerCli {
            env: CliEnv::new(),
            host: self.host(),
        }
    }

    /// `ctr -a <containerd socket> -n <namespace> args`, in `env`.
    pub fn ctr(&self, env: &CliEnv, namespace: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("ctr");
        env.apply(&mut cmd);
        cmd.arg("--address")
            .arg(self.containerd_socket())
            .arg("--namespace")
            .arg(namespace)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr (is containerd installed?)")
    }
}

/// Send `signal` to `pid` with kill(1); whether it was delivered.
fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn pid_in(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("==== dockerd log (test failed) ====\n{}", self.log_tail());
        }
        let containerd = pid_in(&self.dir.path().join("exec/containerd/containerd.pid"));
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + DOCKERD_STOP;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // dockerd stops its containerd; should it have been killed first,
        // stop the orphan by its pid too (only if it is still a containerd).
        if let Some(pid) = containerd {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "containerd" {
                signal(pid, "KILL");
            }
        }
    }
}

/// The docker CLI for one user: its own HOME and DOCKER_CONFIG
/// ([`CliEnv`]), the private engine as `DOCKER_HOST`, the classic builder.
pub struct DockerCli {
    /// The user's home (berth sessions, docker config, helper symlink).
    pub env: CliEnv,
    host: String,
}

/// What a client run printed.
pub struct Printed {
    /// Exit status code (-1 when killed by a signal).
    pub code: i32,
    /// stdout and stderr together.
    pub text: String,
}

impl Printed {
    fn of(out: Output) -> Printed {
        Printed {
            code: out.status.code().unwrap_or(-1),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Assert success and that the output contains each of `texts`.
    pub fn ok(self, what: &str, texts: &[&str]) -> Printed {
        assert_eq!(self.code, 0, "{what} failed:\n{}", self.text);
        self.contains(what, texts)
    }

    /// Assert failure and that the output contains each of `texts`.
    pub fn fails(self, what: &str, texts: &[&str]) -> Printed {
        assert_ne!(self.code, 0, "{what} should fail:\n{}", self.text);
        self.contains(what, texts)
    }

    fn contains(self, what: &str, texts: &[&str]) -> Printed {
        for t in texts {
            assert!(
                self.text.contains(t),
                "{what}: output should contain {t:?}:\n{}",
                self.text
            );
        }
        self
    }
}

impl DockerCli {
    /// Run `docker args` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Printed {
        let mut cmd = Command::new("docker");
        self.env.apply(&mut cmd);
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CLI_HINTS", "false")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().expect("spawn docker");
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        Printed::of(child.wait_with_output().expect("wait for docker"))
    }

    /// `docker login <host> -u <user> --password-stdin`.
    pub fn login(&self, host: &str, user: &str, password: &str) -> Printed {
        self.run(
            &["login", host, "-u", user, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
    }

    /// Build a two-layer `FROM scratch` image with unique content, tagged
    /// `reference`; returns the content of its two files.
    pub fn build(&self, reference: &str) -> (String, String) {
        let ctx = self.env.home().join(format!("ctx-{}", random_suffix()));
        std::fs::create_dir_all(&ctx).expect("mkdir build context");
        let a = format!("first layer {}\n", random_suffix());
        let b = format!("second layer {}\n", random_suffix());
        std::fs::write(ctx.join("a.txt"), &a).expect("write a");
        std::fs::write(ctx.join("b.txt"), &b).expect("write b");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n",
        )
        .expect("write Dockerfile");
        let ctx_s = ctx.display().to_string();
        self.run(&["build", "-q", "-t", reference, &ctx_s], None)
            .ok("docker build", &[]);
        (a, b)
    }

    /// The image id of a local image.
    pub fn image_id(&self, reference: &str) -> String {
        let p = self
            .run(
                &["image", "inspect", "--format", "{{.Id}}", reference],
                None,
            )
            .ok("docker image inspect", &[]);
        p.text.trim().to_string()
    }

    /// Push, assert docker's success lines; the pushed digest.
    pub fn push(&self, reference: &str) -> String {
        let p = self
            .run(&["push", reference], None)
            .ok("docker push", &["digest: sha256:"]);
        let digest = p
            .text
            .split("digest: ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        assert!(digest.starts_with("sha256:"), "{}", p.text);
        digest
    }

    /// `docker rmi`, then pull it back; asserts docker says it downloaded.
    pub fn rmi_and_pull(&self, reference: &str) {
        self.run(&["rmi", reference], None)
            .ok("docker rmi", &["Untagged: "]);
        self.run(&["pull", reference], None).ok(
            "docker pull",
            &[&format!("Status: Downloaded newer image for {reference}")],
        );
    }

    /// docker's config.json (empty object when absent).
    pub fn config(&self) -> serde_json::Value {
        std::fs::read(self.env.docker_config_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    }
}

/// podman as root with private vfs storage under its own directory, its
/// own auth file, no systemd (cgroupfs, file event log).
pub struct Podman {
    dir: tempfile::TempDir,
    env: CliEnv,
}

impl Default for Podman {
    fn default() -> Self {
        Self::new()
    }
}

impl Podman {
    /// Fresh storage and auth file.
    pub fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("bpm-")
            .tempdir_in("/tmp")
            .expect("podman dir");
        Podman {
            dir,
            env: CliEnv::new(),
        }
    }

    /// The auth file podman's login writes.
    pub fn auth_file(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// Run `podman <global flags> args`.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Printed {
        let root = self.dir.path();
        let mut cmd = Command::new("podman");
        self.env.apply(&mut cmd);
        cmd.env("REGISTRY_AUTH_FILE", self.auth_file())
            .env("XDG_RUNTIME_DIR", root.join("xdg"))
            .arg("--root")
            .arg(root.join("root"))
            .arg("--runroot")
            .arg(root.join("run"))
            .arg("--tmpdir")
            .arg(root.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().expect("spawn podman (is podman installed?)");
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        Printed::of(child.wait_with_output().expect("wait for podman"))
    }

    /// A two-layer `FROM scratch` image tagged `reference`.
    pub fn build(&self, reference: &str) {
        let ctx = self.dir.path().join(format!("ctx-{}", random_suffix()));
        std::fs::create_dir_all(&ctx).expect("mkdir build context");
        std::fs::write(ctx.join("a.txt"), format!("podman a {}\n", random_suffix()))
            .expect("write a");
        std::fs::write(ctx.join("b.txt"), format!("podman b {}\n", random_suffix()))
            .expect("write b");
        std::fs::write(
            ctx.join("Containerfile"),
            "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n",
        )
        .expect("write Containerfile");
        let ctx_s = ctx.display().to_string();
        self.run(&["build", "-q", "-t", reference, &ctx_s], None)
            .ok("podman build", &[]);
    }
}
