//! A private PostgreSQL server for berth's tests.
//!
//! [`PgServer::start`] runs Debian's PostgreSQL binaries
//! (`/usr/lib/postgresql/<version>/bin`, or `BERTH_TEST_PG_BIN`) on a free
//! loopback port with its own data and socket directories, and
//! [`PgServer::create_database`] hands out a fresh database per test.
//! Dropping the server stops it by its PID and removes its files.
//!
//! * `initdb` refuses to run as root, so as root every server command runs
//!   as the `postgres` system user (`runuser -u postgres --`) and the
//!   directories are owned by it.
//! * `initdb` is slow, so it runs once per machine into a template cluster
//!   (under the system temp directory, keyed by version); each server
//!   starts from a copy of it.
//! * The superuser is `berth` with password [`PASSWORD`], logins over TCP
//!   need it (scram-sha-256), so URLs carry a password as they do in
//!   production. `fsync` is off: test data need not survive a power cut.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The superuser of every test server.
pub const USER: &str = "berth";
/// Its password.
pub const PASSWORD: &str = "test-pg-password-7Qx";

/// Bump when the template's initdb options change.
const TEMPLATE_VERSION: u32 = 1;

/// A running PostgreSQL server; stopped (by PID) when dropped.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    pid: u32,
}

impl PgServer {
    /// Start a server on a free loopback port. Panics with the server's log
    /// when it cannot start (a test cannot run without it).
    pub fn start() -> PgServer {
        let bin = pg_bin();
        let template = template(&bin);
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("berth-pg-")
                .tempdir()
                .expect("temp dir for PostgreSQL");
            open_up(dir.path());
            let data = dir.path().join("data");
            let sock = dir.path().join("sock");
            run_ok(Command::new("cp").arg("-a").arg(&template).arg(&data));
            std::fs::create_dir(&sock).expect("socket dir");
            give_to_postgres(&sock);
            let log = dir.path().join("postgres.log");
            std::fs::write(&log, "").expect("log file");
            give_to_postgres(&log);
            let port = free_port();
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                sock.display()
            );
            let out = as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &opts, "start"])
                .output()
                .expect("run pg_ctl");
            if out.status.success() {
                let pid = read_pid(&data).expect("postmaster.pid after start");
                return PgServer {
                    bin,
                    dir,
                    port,
                    pid,
                };
            }
            last_log = format!(
                "{}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            // Most likely the port was taken meanwhile: try another.
            if let Some(pid) = read_pid(&data) {
                kill(pid, "QUIT");
            }
        }
        panic!("PostgreSQL did not start:\n{last_log}");
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A new, empty database; its URL (with user and password).
    pub fn create_database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// Run SQL in database `db` through `psql`; its standard output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .env("PGPASSWORD", PASSWORD)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate shutdown of the postmaster (its children follow).
        kill(self.pid, "QUIT");
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(self.pid) {
            kill(self.pid, "KILL");
        }
    }
}

/// The directory of PostgreSQL's server binaries.
fn pg_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_TEST_PG_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin \
             (apt-get install postgresql, or set BERTH_TEST_PG_BIN); scripts/test.sh installs it"
        ),
    }
}

/// The initdb'd template cluster, made once per machine.
fn template(bin: &Path) -> PathBuf {
    let version = bin
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("pg")
        .to_string();
    let root = std::env::temp_dir().join(format!(
        "berth-pg-template-{version}-v{TEMPLATE_VERSION}-uid{}",
        uid()
    ));
    let cluster = root.join("data");
    if cluster.join("PG_VERSION").exists() {
        return cluster;
    }
    // Build beside it and rename into place, so concurrent first tests
    // never see half a template (the loser's copy is thrown away).
    let work = tempfile::Builder::new()
        .prefix("berth-pg-initdb-")
        .tempdir()
        .expect("temp dir for initdb");
    open_up(work.path());
    let staging = work.path().join("root");
    std::fs::create_dir(&staging).expect("staging dir");
    give_to_postgres(&staging);
    let pwfile = work.path().join("pw");
    std::fs::write(&pwfile, PASSWORD).expect("password file");
    give_to_postgres(&pwfile);
    let data = staging.join("data");
    let out = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            USER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .args(["-E", "UTF8", "--locale=C", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&pwfile);
    if std::fs::rename(&staging, &root).is_err() && !cluster.join("PG_VERSION").exists() {
        panic!(
            "could not put the PostgreSQL template at {}",
            root.display()
        );
    }
    cluster
}

fn uid() -> u32 {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn is_root() -> bool {
    uid() == 0
}

/// `program` run as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Let the postgres user traverse `dir` (a root-owned temp dir).
fn open_up(dir: &Path) {
    if is_root() {
        run_ok(Command::new("chmod").arg("0755").arg(dir));
    }
}

fn give_to_postgres(path: &Path) {
    if is_root() {
        run_ok(Command::new("chown").arg("postgres:postgres").arg(path));
    }
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn read_pid(data: &Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}
