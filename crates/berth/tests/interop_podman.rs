//! podman (Debian's package) against a real `berth serve`: login, push,
//! remove, pull, logout — as root with private vfs storage (`--root`,
//! `--runroot`), its own auth file, and `--tls-verify=false` because the
//! test registry speaks plain HTTP on loopback (podman, unlike docker, has
//! no built-in insecure rule for 127.0.0.0/8).

mod common;

use common::docker::Podman;
use common::login::Api;
use common::*;

#[tokio::test]
async fn podman_login_push_pull_logout() {
    let server = TestServer::start().await;
    let host = server.host();
    let api = Api::owner(&server).await;
    let password = api.user("podder").await;
    api.assign("podder", "AcrPush", None).await;

    let podman = Podman::new();
    podman
        .run(
            &[
                "login",
                "--tls-verify=false",
                "-u",
                "podder",
                "--password-stdin",
                &host,
            ],
            Some(&format!("{password}\n")),
        )
        .ok("podman login", &["Login Succeeded!"]);
    let auth = std::fs::read_to_string(podman.auth_file()).expect("podman auth file");
    assert!(auth.contains(&host), "{auth}");

    let reference = format!("{host}/pm/app:v1");
    podman.build(&reference);
    podman
        .run(&["push", "--tls-verify=false", &reference], None)
        .ok("podman push", &["Writing manifest"]);
    podman
        .run(&["rmi", &reference], None)
        .ok("podman rmi", &["Untagged: "]);
    podman
        .run(&["pull", "--tls-verify=false", &reference], None)
        .ok("podman pull", &["Writing manifest"]);
    let r = server.registry().get("/v2/pm/app/tags/list").await.json();
    assert_eq!(r["tags"], serde_json::json!(["v1"]), "{r}");

    // Without --tls-verify=false podman insists on HTTPS and says so.
    podman.run(&["pull", &reference], None).fails(
        "podman pull over TLS",
        &["http: server gave HTTP response to HTTPS client"],
    );

    podman.run(&["logout", &host], None).ok(
        "podman logout",
        &[&format!("Removed login credentials for {host}")],
    );
    podman
        .run(&["push", "--tls-verify=false", &reference], None)
        .fails("podman push after logout", &["authentication required"]);

    // Wrong password: podman prints its own summary of the 401.
    podman
        .run(
            &[
                "login",
                "--tls-verify=false",
                "-u",
                "podder",
                "--password-stdin",
                &host,
            ],
            Some("not-the-password\n"),
        )
        .fails(
            "podman login, wrong password",
            &["invalid username/password"],
        );
}
