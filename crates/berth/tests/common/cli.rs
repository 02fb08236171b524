//! Driving the real `berth` CLI in tests: [`CliEnv`] gives each test its
//! own HOME, DOCKER_CONFIG and BERTH_CONFIG_DIR (and a bin directory put
//! first on PATH, for the `docker-credential-berth` symlink), runs the
//! binary with stdin not a terminal, and reads what it wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::{berth_bin, TestServer, OWNER_PASSWORD, OWNER_USER};

/// The username that goes with a registry refresh token.
pub const TOKEN_USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// A throw-away home for one CLI user.
pub struct CliEnv {
    dir: tempfile::TempDir,
}

impl Default for CliEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl CliEnv {
    /// A fresh, empty home.
    pub fn new() -> CliEnv {
        let dir = tempfile::Builder::new()
            .prefix("berth-cli-")
            .tempdir()
            .expect("create CLI home");
        std::fs::create_dir_all(dir.path().join("bin")).expect("mkdir bin");
        CliEnv { dir }
    }

    /// `$HOME`.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// `$DOCKER_CONFIG` (= `$HOME/.docker`, where oras-py looks too).
    pub fn docker_dir(&self) -> PathBuf {
        self.home().join(".docker")
    }

    /// docker's config file.
    pub fn docker_config_path(&self) -> PathBuf {
        self.docker_dir().join("config.json")
    }

    /// `$BERTH_CONFIG_DIR`.
    pub fn berth_dir(&self) -> PathBuf {
        self.home().join("berth-config")
    }

    /// berth's session file.
    pub fn sessions_path(&self) -> PathBuf {
        self.berth_dir().join("sessions.json")
    }

    /// PATH with this home's bin directory first.
    pub fn path_var(&self) -> std::ffi::OsString {
        let mut dirs = vec![self.home().join("bin")];
        if let Some(p) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&p));
        }
        std::env::join_paths(dirs).expect("join PATH")
    }

    /// Apply this home's environment to any command (skopeo, python, ...).
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("HOME", self.home())
            .env("DOCKER_CONFIG", self.docker_dir())
            .env("BERTH_CONFIG_DIR", self.berth_dir())
            .env("PATH", self.path_var())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("BERTH_REGISTRY")
            .env_remove("BERTH_PLAIN_HTTP")
            .env_remove("BERTH_CA_FILE");
    }

    /// Run `program args` in this home with `stdin` (none: stdin is
    /// /dev/null, so never a terminal).
    pub fn run_program(&self, program: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args);
        self.apply(&mut cmd);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("spawn");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("wait")
    }

    /// Run `berth args`.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_program(Path::new(berth_bin()), args, stdin)
    }

    /// Run `berth args`; assert success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    /// [`CliEnv::ok`] with stdin.
    pub fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({})\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run `berth args --output json`; assert success; the JSON printed
    /// (`Null` when nothing was).
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let out = self.ok(&a);
        if out.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("berth {args:?} printed non-JSON ({e}): {out}"))
    }

    /// Run `berth args`; assert exit status 1; stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert_eq!(
            out.status.code(),
            Some(1),
            "berth {args:?} should fail with status 1\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `berth login <server> -u <user> --password-stdin`.
    pub fn login(&self, server: &TestServer, user: &str, password: &str) -> String {
        let host = server.host();
        self.ok_in(
            &["login", &host, "-u", user, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
    }

    /// Log in as the bootstrap Owner.
    pub fn login_owner(&self, server: &TestServer) -> String {
        self.login(server, OWNER_USER, OWNER_PASSWORD)
    }

    /// docker's config.json as JSON.
    pub fn docker_config(&self) -> Value {
        let bytes = std::fs::read(self.docker_config_path()).expect("read docker config");
        serde_json::from_slice(&bytes).expect("docker config is JSON")
    }

    /// Write docker's config.json.
    pub fn write_docker_config(&self, doc: &Value) {
        std::fs::create_dir_all(self.docker_dir()).expect("mkdir .docker");
        std::fs::write(self.docker_config_path(), doc.to_string()).expect("write docker config");
    }

    /// berth's sessions.json as JSON.
    pub fn sessions(&self) -> Value {
        let bytes = std::fs::read(self.sessions_path()).expect("read sessions");
        serde_json::from_slice(&bytes).expect("sessions is JSON")
    }

    /// Overwrite berth's sessions.json.
    pub fn write_sessions(&self, doc: &Value) {
        std::fs::write(self.sessions_path(), doc.to_string()).expect("write sessions");
    }

    /// Put `docker-credential-berth` (a symlink to the berth binary) on
    /// this home's PATH; its path.
    pub fn link_helper(&self) -> PathBuf {
        let link = self.home().join("bin/docker-credential-berth");
        if !link.exists() {
            std::os::unix::fs::symlink(berth_bin(), &link).expect("symlink helper");
        }
        link
    }

    /// Run the helper as docker does: `docker-credential-berth VERB` with
    /// `input` on stdin.
    pub fn helper(&self, verb: &str, input: &str) -> Output {
        let link = self.link_helper();
        self.run_program(&link, &[verb], Some(input))
    }
}

impl CliEnv {
    /// Run skopeo in this home; assert success; stdout.
    pub fn skopeo(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("skopeo");
        self.apply(&mut cmd);
        let out = cmd.args(args).output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo {args:?} failed\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A signature policy accepting anything, for `skopeo --policy`.
    pub fn skopeo_policy(&self) -> String {
        let p = self.home().join("policy.json");
        std::fs::write(&p, br#"{"default":[{"type":"insecureAcceptAnything"}]}"#)
            .expect("write policy");
        p.display().to_string()
    }
}

/// Unix permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}
