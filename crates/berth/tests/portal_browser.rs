//! The web portal (`/ui/`) in a real browser: Debian's headless Chromium
//! driven through WebDriver (chromedriver + fantoccini) against a real
//! `berth serve`.
//!
//! One scenario walks the pages a user would: sign in, browse to a
//! manifest pushed by skopeo (whose annotations hold HTML and script, and
//! must render as text with nothing run), create a token and see its
//! password once and never again, find a failed login provoked with
//! reqwest by its reason and open its explain view (by clicking and by
//! pasting the correlation id), and check that a Reader sees no controls
//! and has its POSTs refused. Around it, plain HTTP checks: the security
//! headers, CSRF refusals, anonymous visitors with anonymous pull off and on.
//!
//! Every main page is saved as a screenshot in docs/screenshots/.
//!
//! Skipped with a printed notice when chromium, chromedriver or skopeo is
//! missing — except under CI (`CI` set), where that is a failure:
//! scripts/test.sh installs them.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::login::Api;
use common::skopeo::write_policy;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{json, Value};

/// Markup a hostile pusher puts into annotations; none of it may run.
const HOSTILE: &str =
    "<script>window.__pwned='annotation'</script><img src=x onerror=\"window.__pwned='img'\">";

fn tools_available() -> bool {
    let missing: Vec<&str> = ["chromium", "chromedriver", "skopeo"]
        .into_iter()
        .filter(|p| !on_path(p))
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{missing:?} not on PATH, but CI is set: scripts/test.sh must install them");
    }
    eprintln!("SKIPPED: {missing:?} not on PATH; the portal browser test did not run");
    false
}

/// chromedriver on a private loopback port, stopped by PID on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
    profile_dir: PathBuf,
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::Builder::new()
            .prefix("berth-chromium-")
            .tempdir()
            .expect("profile dir");
        let profile_dir = profile.path().to_path_buf();
        let d = Driver {
            child,
            port,
            _profile: profile,
            profile_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = reqwest::get(format!("http://127.0.0.1:{port}/status"))
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        d
    }

    /// A fresh headless Chromium session.
    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium_binary(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", self.profile_dir.display()),
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("start a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver ends the browsers it started when it exits.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium_binary() -> String {
    for p in ["/usr/bin/chromium", "/usr/lib/chromium/chromium"] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    "chromium".to_string()
}

fn screenshots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&d).expect("mkdir docs/screenshots");
    d
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn css(c: &Client, selector: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| {
            panic!("no element {selector}: {e}");
        })
}

async fn exists(c: &Client, selector: &str) -> bool {
    !c.find_all(Locator::Css(selector))
        .await
        .expect("find_all")
        .is_empty()
}

async fn text_of(c: &Client, selector: &str) -> String {
    css(c, selector).await.text().await.expect("text")
}

/// Nothing the pages showed ran as script.
async fn assert_nothing_ran(c: &Client) {
    let v = c
        .execute(
            "return typeof window.__pwned === 'undefined' ? null : String(window.__pwned);",
            vec![],
        )
        .await
        .expect("execute");
    assert_eq!(v, Value::Null, "injected script ran: {v}");
}

async fn sign_in(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/ui/login"))
        .await
        .expect("goto login");
    css(c, "#username")
        .await
        .send_keys(user)
        .await
        .expect("type user");
    css(c, "#password")
        .await
        .send_keys(password)
        .await
        .expect("type password");
    css(c, "section.signin button[type=submit]")
        .await
        .click()
        .await
        .expect("submit");
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.current_url().await.expect("url").path() == "/ui/login" {
        assert!(
            Instant::now() < deadline,
            "sign-in as {user} did not leave the form"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    css(c, "#main h1").await;
}

async fn sign_out(c: &Client) {
    css(c, "form[action='/ui/logout'] button")
        .await
        .click()
        .await
        .expect("sign out");
    css(c, "#username").await;
}

/// The session cookie and this page's CSRF token, for plain HTTP checks.
async fn session_of(c: &Client) -> (String, String) {
    let cookie = c
        .get_all_cookies()
        .await
        .expect("cookies")
        .into_iter()
        .find(|k| k.name() == "berth_session")
        .expect("a berth_session cookie");
    assert!(
        cookie.http_only().unwrap_or(false),
        "session cookie is HttpOnly"
    );
    let csrf = css(c, "form[action='/ui/logout'] input[name=csrf]")
        .await
        .attr("value")
        .await
        .expect("attr")
        .expect("csrf value");
    (format!("berth_session={}", cookie.value()), csrf)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A gzip'd tar layer.
fn layer() -> (Vec<u8>, String) {
    let mut tar_bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar_bytes);
        let content = random_bytes(3000);
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, "app/file.bin", content.as_slice())
            .expect("tar append");
        b.finish().expect("tar finish");
    }
    let diff_id = sha256(&tar_bytes);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes).expect("gzip");
    (gz.finish().expect("gzip finish"), diff_id)
}

/// Push an image whose annotations hold markup, with skopeo from an OCI
/// layout on disk; returns its digest.
fn skopeo_push(server: &TestServer, tmp: &Path, target: &str) -> String {
    let dir = tmp.join("layout");
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir layout");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let write = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), data).expect("blob");
        d
    };
    let (gz, diff_id) = layer();
    write(&gz);
    let config = serde_json::to_vec(&json!({
        "created": "2026-01-02T03:04:05Z", "architecture": "amd64", "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .expect("config");
    write(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER_GZIP, &gz)],
        "annotations": {
            "org.opencontainers.image.title": HOSTILE,
            "<b>key</b>": "value with </dd></dl><script>window.__pwned='close'</script>",
        },
    }))
    .expect("manifest");
    let digest = write(&manifest);
    let mut index_desc = descriptor(OCI_MANIFEST, &manifest);
    index_desc["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [index_desc]})).expect("index"),
    )
    .expect("index.json");
    let policy = write_policy(tmp);
    let mut cmd = Command::new("skopeo");
    cmd.arg("--policy").arg(&policy).arg("copy");
    for a in server.skopeo_auth_args() {
        cmd.arg(a);
    }
    let out = cmd
        .args([
            "--dest-tls-verify=false",
            "--preserve-digests",
            &format!("oci:{}:v1", dir.display()),
            &format!("docker://{}/{target}:v1", server.host()),
        ])
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    digest
}

#[tokio::test]
async fn portal_in_a_browser() {
    if !tools_available() {
        return;
    }
    let server = TestServer::start().await;
    let base = server.base_url();
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = "team/web";
    let digest = skopeo_push(&server, tmp.path(), repo);

    // A signature referring to the image (a referrer by artifactType).
    let reg = server.registry();
    let empty = reg.push_blob(repo, b"{}").await;
    assert_eq!(empty, EMPTY_JSON_DIGEST);
    let sig_layer = random_bytes(64);
    reg.push_blob(repo, &sig_layer).await;
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": reg.get_manifest(repo, &digest).await.body.len()});
    let sig = referrer_manifest(
        &subject,
        Some("application/vnd.dev.cosign.artifact.sig.v1+json"),
        "application/vnd.oci.empty.v1+json",
        &sig_layer,
        &json!({"note": HOSTILE}),
    );
    reg.put_manifest_ok(repo, &sha256(&sig), OCI_MANIFEST, &sig)
        .await;

    let api = Api::owner(&server).await;
    let reader_pw = api.user("reader").await;
    api.assign("reader", "Reader", None).await;

    // A failed login with markup in the username and user agent.
    let failed = reqwest::Client::builder()
        .user_agent("<script>window.__pwned='ua'</script>")
        .build()
        .expect("client")
        .get(format!("{base}/v2/"))
        .basic_auth(
            "<img src=x onerror=window.__pwned=1>",
            Some("wrong-password"),
        )
        .send()
        .await
        .expect("failed login");
    assert_eq!(failed.status(), 401);
    let cid = failed
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .expect("correlation id")
        .to_string();

    let driver = Driver::start().await;
    let c = driver.browser().await;

    // Signed out: every page leads to the sign-in form.
    c.goto(&format!("{base}/ui/access")).await.expect("goto");
    css(&c, "#username").await;
    screenshot(&c, "sign-in").await;

    // Sign in as the Owner and browse to the manifest.
    sign_in(&c, &base, OWNER_USER, OWNER_PASSWORD).await;
    assert_eq!(text_of(&c, "#main h1").await, "Repositories");
    let row = text_of(&c, "#repositories tbody tr").await;
    assert!(
        row.contains(repo) && row.contains("1"),
        "repository row: {row}"
    );
    screenshot(&c, "repositories").await;
    css(&c, "#repositories a[href='/ui/repository?name=team%2Fweb']")
        .await
        .click()
        .await
        .expect("open repository");
    assert_eq!(text_of(&c, "#main h1").await, repo);
    assert!(text_of(&c, "#tags").await.contains("v1"));
    screenshot(&c, "repository").await;
    css(&c, "#tags a.tag")
        .await
        .click()
        .await
        .expect("open tag");
    assert_eq!(text_of(&c, "#digest").await, digest);
    let facts = text_of(&c, "#facts").await;
    assert!(
        facts.contains("2026-01-02T03:04:05Z"),
        "created time: {facts}"
    );
    assert!(facts.contains("linux/amd64"), "platform: {facts}");
    let annotations = text_of(&c, "#annotations").await;
    assert!(
        annotations.contains(HOSTILE),
        "markup shown as text: {annotations}"
    );
    assert!(annotations.contains("<b>key</b>"), "{annotations}");
    assert!(exists(&c, "#layers tbody tr").await, "layers listed");
    let page = c.source().await.expect("source");
    assert!(
        page.contains("application/vnd.dev.cosign.artifact.sig.v1+json"),
        "referrer by artifactType"
    );
    assert!(page.contains(&format!("docker pull {}/{repo}@{digest}", server.host())));
    assert!(page.contains(&format!("oras pull {}/{repo}@{digest}", server.host())));
    assert_nothing_ran(&c).await;
    screenshot(&c, "manifest").await;
    c.set_window_size(390, 844).await.expect("phone width");
    screenshot(&c, "manifest-phone").await;
    c.set_window_size(1280, 900).await.expect("desktop width");

    // Plain HTTP with the Owner's session: CSRF missing → refused.
    let (owner_cookie, owner_csrf) = session_of(&c).await;
    let http = no_redirects();
    let r = http
        .post(format!("{base}/ui/access/tokens"))
        .header("Cookie", &owner_cookie)
        .form(&[
            ("name", "no-csrf-token"),
            ("repository", repo),
            ("content_read", "on"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "a form without the CSRF token is refused");
    let r = http
        .post(format!("{base}/ui/access/tokens"))
        .header("Cookie", &owner_cookie)
        .form(&[
            ("csrf", "forged"),
            ("name", "no-csrf-token"),
            ("repository", repo),
            ("content_read", "on"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "a wrong CSRF token is refused");
    let (status, _) = api
        .call(Method::GET, "/api/v1/tokens/no-csrf-token", None)
        .await;
    assert_eq!(status, 404, "nothing was created");
    assert!(!owner_csrf.is_empty());

    // Create a token: its password is shown once, and works.
    c.goto(&format!("{base}/ui/access"))
        .await
        .expect("goto access");
    screenshot(&c, "access").await;
    if css(&c, "#create-token")
        .await
        .attr("open")
        .await
        .expect("attr")
        .is_none()
    {
        css(&c, "#create-token summary")
            .await
            .click()
            .await
            .expect("open form");
    }
    css(&c, "#token-name")
        .await
        .send_keys("ci-pull")
        .await
        .expect("type");
    css(&c, "#token-repo")
        .await
        .send_keys(repo)
        .await
        .expect("type");
    css(&c, "#create-token-form button[type=submit]")
        .await
        .click()
        .await
        .expect("create");
    let password = text_of(&c, "#new-token code.password").await;
    assert!(password.len() >= 20, "a generated password: {password:?}");
    screenshot(&c, "token-created").await;
    let pull = reqwest::Client::new()
        .get(format!("{base}/v2/{repo}/tags/list"))
        .basic_auth("ci-pull", Some(&password))
        .send()
        .await
        .expect("pull with token");
    assert_eq!(pull.status(), 200, "the shown password works");
    c.goto(&format!("{base}/ui/access"))
        .await
        .expect("reload access");
    let again = c.source().await.expect("source");
    assert!(again.contains("ci-pull"), "the token is listed");
    assert!(
        !again.contains(&password),
        "the password is never shown again"
    );
    assert!(!exists(&c, "#new-token").await);

    // Effective access: the token's scope map decides.
    c.goto(&format!(
        "{base}/ui/access/effective?identity=token%3Aci-pull&repository=team%2Fweb"
    ))
    .await
    .expect("effective");
    let eff = text_of(&c, "#effective").await;
    assert!(
        eff.contains("pull")
            && eff.contains("allowed")
            && eff.contains("scope map ci-pull-scope-map"),
        "{eff}"
    );
    assert!(eff.contains("denied"), "push is not granted: {eff}");
    screenshot(&c, "effective-access").await;

    // The failed login: found with its reason, and explained.
    let link = format!("a[href='/ui/activity/explain?id={cid}']");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        c.goto(&format!("{base}/ui/activity/logins?failures=1"))
            .await
            .expect("activity");
        if exists(&c, &link).await {
            break;
        }
        assert!(Instant::now() < deadline, "the failed login never appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logins = text_of(&c, "#logins").await;
    assert!(
        logins.contains("<img src=x onerror=window.__pwned=1>"),
        "username tried, as text: {logins}"
    );
    assert!(
        logins.contains("unknown_identity")
            || logins.contains("invalid_credentials")
            || logins.contains("bad_password"),
        "reason shown: {logins}"
    );
    assert!(exists(&c, "#failures-chart rect").await, "failures chart");
    assert_nothing_ran(&c).await;
    screenshot(&c, "login-activity").await;
    css(&c, &link).await.click().await.expect("open explain");
    assert!(
        text_of(&c, "#fix").await.contains("log in again"),
        "the view leads with the fix"
    );
    assert_eq!(text_of(&c, "#rule").await, "credential");
    assert_nothing_ran(&c).await;
    screenshot(&c, "explain").await;
    // Pasting the correlation id leads to the same view.
    c.goto(&format!("{base}/ui/activity/logins"))
        .await
        .expect("activity");
    css(&c, "#cid").await.send_keys(&cid).await.expect("paste");
    css(&c, "form.explainbox button")
        .await
        .click()
        .await
        .expect("explain");
    assert_eq!(text_of(&c, "#rule").await, "credential");

    // Repository activity.
    c.goto(&format!("{base}/ui/activity/repository?name=team%2Fweb"))
        .await
        .expect("repo activity");
    assert!(text_of(&c, "#repository-activity").await.contains("push"));
    screenshot(&c, "repository-activity").await;

    // A Reader looks but cannot change: no controls, POSTs refused.
    sign_out(&c).await;
    c.goto(&format!("{base}/ui/access")).await.expect("goto");
    css(&c, "#username").await;
    sign_in(&c, &base, "reader", &reader_pw).await;
    c.goto(&format!("{base}/ui/access"))
        .await
        .expect("goto access");
    assert!(text_of(&c, "#main").await.contains("a Reader"));
    assert!(
        !exists(&c, "#settings-form").await,
        "no settings control for a Reader"
    );
    assert!(
        !exists(&c, "#create-token-form").await,
        "no create-token control"
    );
    assert!(!exists(&c, "form[action='/ui/access/tokens/delete']").await);
    c.goto(&format!("{base}/ui/manifest?name=team%2Fweb&ref=v1"))
        .await
        .expect("manifest");
    assert!(
        !exists(&c, "a.danger").await,
        "no delete control for a Reader"
    );
    let (reader_cookie, reader_csrf) = session_of(&c).await;
    let r = http
        .post(format!("{base}/ui/access/settings"))
        .header("Cookie", &reader_cookie)
        .form(&[("csrf", reader_csrf.as_str()), ("anonymous_pull", "on")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "a Reader's settings change is refused");
    let r = http
        .post(format!("{base}/ui/delete"))
        .header("Cookie", &reader_cookie)
        .form(&[
            ("csrf", reader_csrf.as_str()),
            ("name", repo),
            ("tag", "v1"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "a Reader's delete is refused");
    let settings = api.call(Method::GET, "/api/v1/registry", None).await.1;
    assert_eq!(settings["anonymousPullEnabled"], json!(false));
    assert_eq!(reg.tags(repo).await, vec!["v1".to_string()]);

    // The Owner deletes the tag after confirming.
    sign_out(&c).await;
    sign_in(&c, &base, OWNER_USER, OWNER_PASSWORD).await;
    c.goto(&format!("{base}/ui/repository?name=team%2Fweb"))
        .await
        .expect("repo");
    css(&c, "#tags a.danger")
        .await
        .click()
        .await
        .expect("delete link");
    screenshot(&c, "confirm-delete").await;
    assert!(
        reg.tags(repo).await.contains(&"v1".to_string()),
        "nothing deleted before confirming"
    );
    css(&c, "#confirm-delete")
        .await
        .click()
        .await
        .expect("confirm");
    css(&c, "#main h1").await;
    assert!(reg.tags(repo).await.is_empty(), "the tag is gone");

    // Signing out ends the session on the server too.
    sign_out(&c).await;
    let r = http
        .get(format!("{base}/ui/access"))
        .header("Cookie", &owner_cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303, "an ended session is not accepted");
    c.close().await.expect("close browser");
}

#[tokio::test]
async fn portal_headers_anonymous_and_sessions() {
    let server = TestServer::start().await;
    let base = server.base_url();
    let http = no_redirects();

    // Security headers on every page, no inline script or style allowed.
    let r = http
        .get(format!("{base}/ui/login"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a CSP header")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let login_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("berth_login_csrf="))
        .expect("login CSRF cookie")
        .to_string();
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"));
    let body = r.text().await.expect("body");
    assert!(
        !body.contains("<script>") && !body.contains(" style="),
        "no inline script or style"
    );
    for asset in ["/ui/assets/portal.css", "/ui/assets/portal.js"] {
        let a = http
            .get(format!("{base}{asset}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(a.status(), 200, "{asset} is served from the binary");
    }

    // Sign-in without the form's CSRF token is refused; with it, a session
    // cookie with the promised attributes.
    let r = http
        .post(format!("{base}/ui/login"))
        .form(&[("username", OWNER_USER), ("password", OWNER_PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let token = login_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .expect("cookie value");
    let r = http
        .post(format!("{base}/ui/login"))
        .header("Cookie", format!("berth_login_csrf={token}"))
        .form(&[
            ("username", OWNER_USER),
            ("password", "wrong"),
            ("csrf", &token),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401, "a wrong password is refused");
    let r = http
        .post(format!("{base}/ui/login"))
        .header("Cookie", format!("berth_login_csrf={token}"))
        .form(&[
            ("username", OWNER_USER),
            ("password", OWNER_PASSWORD),
            ("csrf", &token),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("berth_session="))
        .expect("session cookie")
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age="] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Secure"), "no Secure over plain HTTP");
    let cookie = session.split(';').next().expect("pair").to_string();
    let r = http
        .get(format!("{base}/ui/repositories"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);

    // The sessions are in the database (shared by replicas): a restart
    // keeps them.
    let mut server = server;
    server.restart().await;
    let base = server.base_url();
    let r = http
        .get(format!("{base}/ui/access"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "the session survives a restart");

    // Anonymous, anonymous pull off: nothing but the sign-in form.
    let reg = server.registry();
    let image = Image::random(1, 128);
    reg.push_image("open/app", "v1", &image).await;
    for page in [
        "/ui/repositories",
        "/ui/repository?name=open%2Fapp",
        "/ui/activity/logins",
    ] {
        let r = http.get(format!("{base}{page}")).send().await.expect("get");
        assert_eq!(
            r.status(),
            303,
            "{page} sends anonymous visitors to sign in"
        );
        assert_eq!(r.headers()["location"], "/ui/login");
    }
    // Anonymous pull on: a repository opened by name, no catalog, no access pages.
    let api = Api::owner(&server).await;
    api.registry_settings(json!({"anonymousPullEnabled": true}))
        .await;
    let r = http
        .get(format!("{base}/ui/repository?name=open%2Fapp"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("body").contains("v1"));
    let list = http
        .get(format!("{base}/ui/repositories"))
        .send()
        .await
        .expect("get");
    assert_eq!(list.status(), 200);
    assert!(
        !list.text().await.expect("body").contains("open/app"),
        "anonymous pull does not list the catalog"
    );
    let r = http
        .get(format!("{base}/ui/access"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
}
