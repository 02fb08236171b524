//! skopeo logs in (`skopeo login`, its own auth file) and copies images in
//! and out with each kind of credential: the admin account, a service
//! principal secret, a repository-scoped token (push to an allowed
//! repository works, to another is denied), a refresh token under the
//! username 00000000-0000-0000-0000-000000000000, and anonymously when
//! anonymous pull is on (pull works, push is denied).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::login::*;
use common::skopeo::{skopeo_available, write_policy};
use common::*;
use serde_json::json;

/// A skopeo identity: its own auth file in a temp dir.
struct Skopeo<'a> {
    server: &'a TestServer,
    policy: PathBuf,
    authfile: PathBuf,
}

impl<'a> Skopeo<'a> {
    fn new(server: &'a TestServer, dir: &Path, name: &str) -> Skopeo<'a> {
        let authfile = dir.join(format!("{name}-auth.json"));
        std::fs::write(&authfile, br#"{"auths":{}}"#).expect("write authfile");
        Skopeo {
            server,
            policy: write_policy(dir),
            authfile,
        }
    }

    fn run(&self, sub: &str, args: &[&str]) -> Output {
        Command::new("skopeo")
            .arg("--policy")
            .arg(&self.policy)
            .arg(sub)
            .arg("--authfile")
            .arg(&self.authfile)
            .args(args)
            .output()
            .expect("run skopeo")
    }

    fn ok(&self, sub: &str, args: &[&str]) -> Output {
        let out = self.run(sub, args);
        assert!(
            out.status.success(),
            "skopeo {sub} {args:?} failed\nstderr: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.server.log_tail(2000)
        );
        out
    }

    fn login(&self, user: &str, password: &str) {
        self.ok(
            "login",
            &[
                "--tls-verify=false",
                "--username",
                user,
                "--password",
                password,
                &self.server.host(),
            ],
        );
    }

    /// Copy a local `dir:` image to `repo:v1`.
    fn push(&self, dir: &Path, repo: &str) -> Output {
        self.run(
            "copy",
            &[
                "--dest-tls-verify=false",
                &format!("dir:{}", dir.display()),
                &format!("docker://{}/{repo}:v1", self.server.host()),
            ],
        )
    }

    /// Copy `repo:v1` to a local `dir:`; returns the manifest's digest.
    fn pull(&self, repo: &str, dest: &Path) -> Result<String, String> {
        let out = self.run(
            "copy",
            &[
                "--src-tls-verify=false",
                &format!("docker://{}/{repo}:v1", self.server.host()),
                &format!("dir:{}", dest.display()),
            ],
        );
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let manifest = std::fs::read(dest.join("manifest.json")).expect("manifest.json");
        Ok(sha256(&manifest))
    }
}

fn assert_refused(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what} succeeded");
    let err = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(
        [
            "denied",
            "forbidden",
            "unauthorized",
            "authentication required"
        ]
        .iter()
        .any(|w| err.contains(w)),
        "{what}: {err}"
    );
}

#[tokio::test]
async fn skopeo_logs_in_with_every_credential_kind() {
    if !skopeo_available() {
        return;
    }
    let server = TestServer::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let image = Image::random(2, 512);
    server
        .registry()
        .push_image("sk/src", "v1", &image)
        .await
        .expect_status(201);
    // The Owner fetches the image into a local dir: every case pushes it.
    let owner = Skopeo::new(&server, tmp.path(), "owner");
    owner.login(OWNER_USER, OWNER_PASSWORD);
    let src = tmp.path().join("src");
    assert_eq!(owner.pull("sk/src", &src), Ok(image.digest()));

    let api = Api::owner(&server).await;
    // Push the local image, pull it back: the bytes pulled are the manifest
    // the registry stored (skopeo may compress layers when it cannot reuse
    // them, so the pushed manifest need not equal the source's).
    let reg = server.registry();
    let round_trip = |sk: &Skopeo, repo: &str, name: &str| {
        let out = sk.push(&src, repo);
        assert!(
            out.status.success(),
            "{name}: push to {repo} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dest = tmp.path().join(format!("{name}-out"));
        sk.pull(repo, &dest)
            .unwrap_or_else(|e| panic!("{name}: pull of {repo} failed: {e}"))
    };
    let stored = |repo: &'static str| {
        let reg = &reg;
        async move {
            reg.get_manifest(repo, "v1")
                .await
                .expect_status(200)
                .must_header("docker-content-digest")
        }
    };

    // Admin account.
    let admin_pw = api.enable_admin().await;
    let admin = Skopeo::new(&server, tmp.path(), "admin");
    admin.login("berth", &admin_pw);
    let pulled = round_trip(&admin, "sk/admin", "admin");
    assert_eq!(pulled, stored("sk/admin").await, "admin");

    // Service principal secret (AcrPush).
    let (app_id, secret) = api.service_principal("sk-sp", None).await;
    api.assign(&app_id, "AcrPush", None).await;
    let sp = Skopeo::new(&server, tmp.path(), "sp");
    sp.login(&app_id, &secret);
    let pulled = round_trip(&sp, "sk/sp", "service principal");
    assert_eq!(pulled, stored("sk/sp").await, "service principal");

    // Repository-scoped token on sk/allowed/*.
    let password = api
        .repo_token(json!({"name": "sk-token", "repositories": [
            {"repository": "sk/allowed/*", "actions": ["content/read", "content/write"]}
        ]}))
        .await;
    let token = Skopeo::new(&server, tmp.path(), "token");
    token.login("sk-token", &password);
    let pulled = round_trip(&token, "sk/allowed/app", "repository token");
    assert_eq!(pulled, stored("sk/allowed/app").await, "repository token");
    assert_refused(
        &token.push(&src, "sk/forbidden/app"),
        "repository token push outside its scope map",
    );
    assert!(
        !server
            .registry()
            .get("/v2/_catalog")
            .await
            .text()
            .contains("sk/forbidden"),
        "a refused push left a repository behind"
    );

    // A refresh token under the null-UUID username (daemonless login).
    let pw = api.user("sk-user").await;
    api.assign("sk-user", "AcrPush", None).await;
    let directory = user_directory_token(&server, "sk-user", &pw).await;
    let refresh = str_field(
        &json_of(exchange(&server, &directory).await).await,
        "refresh_token",
    );
    let null_user = Skopeo::new(&server, tmp.path(), "null-user");
    null_user.login(NULL_USER, &refresh);
    let pulled = round_trip(&null_user, "sk/refresh", "null-uuid refresh token");
    assert_eq!(
        pulled,
        stored("sk/refresh").await,
        "null-uuid refresh token"
    );

    // Anonymous: nothing without anonymous pull; with it, pull but no push.
    let anonymous = Skopeo::new(&server, tmp.path(), "anonymous");
    assert!(anonymous
        .pull("sk/src", &tmp.path().join("anon-off"))
        .is_err());
    api.registry_settings(json!({"anonymousPullEnabled": true}))
        .await;
    assert_eq!(
        anonymous.pull("sk/src", &tmp.path().join("anon-on")),
        Ok(image.digest())
    );
    assert_refused(&anonymous.push(&src, "sk/anonymous"), "anonymous push");
}
