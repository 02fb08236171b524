//! Every management verb of the CLI against a spawned server: happy paths,
//! `--yes` confirmation, output formats, `-r` defaulting to the last
//! login, and refusals printed with the server's message (404, 400, 403 by
//! role).

mod common;

use common::cli::CliEnv;
use common::*;
use serde_json::{json, Value};

fn names(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .filter_map(|x| x[key].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn users_groups_and_output_formats() {
    let server = TestServer::start().await;
    let env = CliEnv::new();
    env.login_owner(&server);

    let alice = env.json(&[
        "user",
        "create",
        "--name",
        "alice",
        "--password",
        "alice-password-1",
    ]);
    assert_eq!(alice["name"], "alice");
    assert!(
        alice.get("password").is_none(),
        "a given password is not echoed"
    );
    let bob = env.json(&["user", "create", "--name", "bob"]);
    assert!(
        bob["password"].as_str().is_some_and(|p| p.len() >= 16),
        "generated once: {bob}"
    );
    let list = env.json(&["user", "list"]);
    let all = names(&list, "name");
    assert!(
        all.contains(&"alice".into()) && all.contains(&"bob".into()),
        "{all:?}"
    );
    assert_eq!(
        env.json(&["user", "show", "--name", "alice"])["enabled"],
        true
    );

    // Formats: table with a header, tsv without.
    let table = env.ok(&["user", "list", "--output", "table"]);
    let mut lines = table.lines();
    assert!(lines.next().expect("header").starts_with("Name"), "{table}");
    assert!(lines.next().expect("rule").starts_with("----"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("alice ")), "{table}");
    let tsv = env.ok(&["user", "show", "--name", "alice", "--output", "tsv"]);
    assert!(tsv.starts_with("alice\t"), "{tsv}");
    // Not a terminal: JSON by default.
    let default = env.ok(&["user", "show", "--name", "alice"]);
    assert!(serde_json::from_str::<Value>(&default).is_ok(), "{default}");

    // Disabling and deleting need --yes without a terminal.
    let err = env.fails(&["user", "update", "--name", "alice", "--enabled", "false"]);
    assert!(err.contains("--yes"), "{err}");
    let v = env.json(&[
        "user",
        "update",
        "--name",
        "alice",
        "--enabled",
        "false",
        "--yes",
    ]);
    assert_eq!(v["enabled"], false);
    let v = env.json(&[
        "user",
        "update",
        "--name",
        "alice",
        "--enabled",
        "true",
        "--password",
        "alice-password-2",
    ]);
    assert_eq!(v["enabled"], true);
    let err = env.fails(&["user", "update", "--name", "alice"]);
    assert!(err.contains("nothing to update"), "{err}");
    let err = env.fails(&["user", "show", "--name", "nobody"]);
    assert!(err.contains("404") && err.contains("NOT_FOUND"), "{err}");
    let err = env.fails(&["user", "create", "--name", "alice"]);
    assert!(err.contains("409") && err.contains("CONFLICT"), "{err}");
    let err = env.fails(&["user", "create", "--name", "carol", "--password", "x"]);
    assert!(
        err.contains("400") && err.contains("field: password"),
        "{err}"
    );

    // Groups and members.
    let g = env.json(&["group", "create", "--name", "team-a"]);
    assert_eq!(g["name"], "team-a");
    let g = env.json(&[
        "group", "member", "add", "--name", "team-a", "--user", "alice",
    ]);
    assert_eq!(g["members"].as_array().map(Vec::len), Some(1), "{g}");
    assert_eq!(
        env.json(&["group", "show", "--name", "team-a"])["members"],
        json!([alice["id"]])
    );
    assert!(names(&env.json(&["group", "list"]), "name").contains(&"team-a".into()));
    env.fails(&[
        "group", "member", "remove", "--name", "team-a", "--user", "alice",
    ]);
    env.ok(&[
        "group", "member", "remove", "--name", "team-a", "--user", "alice", "--yes",
    ]);
    assert_eq!(
        env.json(&["group", "show", "--name", "team-a"])["members"],
        json!([])
    );
    let err = env.fails(&[
        "group", "member", "add", "--name", "team-a", "--user", "nobody",
    ]);
    assert!(err.contains("404"), "{err}");
    env.ok(&["group", "delete", "--name", "team-a", "--yes"]);
    assert!(!names(&env.json(&["group", "list"]), "name").contains(&"team-a".into()));

    let err = env.fails(&["user", "delete", "--name", "bob"]);
    assert!(err.contains("refusing") && err.contains("--yes"), "{err}");
    env.ok(&["user", "delete", "--name", "bob", "-y"]);
    env.fails(&["user", "show", "--name", "bob"]);
}

#[tokio::test]
async fn service_principals_admin_and_registry() {
    let server = TestServer::start().await;
    let env = CliEnv::new();
    env.login_owner(&server);

    let sp = env.json(&[
        "sp",
        "create",
        "--name",
        "builder",
        "--expiration-in-days",
        "30",
    ]);
    let app_id = sp["appId"].as_str().expect("appId").to_string();
    assert!(sp["secret"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(sp["expiresAt"].as_u64().is_some());
    let shown = env.json(&["sp", "show", "--id", &app_id]);
    assert_eq!(shown["name"], "builder");
    assert!(shown.get("secret").is_none(), "secrets are shown once");
    assert_eq!(
        names(&env.json(&["sp", "list"]), "appId"),
        vec![app_id.clone()]
    );
    let added = env.json(&["sp", "credential", "add", "--id", &app_id]);
    let secret_id = added["secretId"].as_str().expect("secretId").to_string();
    assert_eq!(
        env.json(&["sp", "show", "--id", &app_id])["secrets"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    env.ok(&[
        "sp",
        "credential",
        "delete",
        "--id",
        &app_id,
        "--secret-id",
        &secret_id,
        "--yes",
    ]);
    env.fails(&["sp", "credential", "reset", "--id", &app_id]);
    let reset = env.json(&["sp", "credential", "reset", "--id", &app_id, "--yes"]);
    assert_ne!(reset["secret"], sp["secret"]);
    assert_eq!(
        env.json(&["sp", "show", "--id", &app_id])["secrets"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let err = env.fails(&["sp", "create", "--name", "x", "--expiration-in-days", "0"]);
    assert!(err.contains("field: expirationInDays"), "{err}");
    env.ok(&["sp", "delete", "--id", &app_id, "--yes"]);
    let err = env.fails(&["sp", "show", "--id", &app_id]);
    assert!(err.contains("404"), "{err}");

    // Admin account.
    assert_eq!(env.json(&["admin", "show"])["enabled"], false);
    let on = env.json(&["admin", "enable"]);
    assert_eq!(on["enabled"], true);
    let renewed = env.json(&["admin", "renew", "--password-name", "password2"]);
    assert_eq!(renewed["newPasswords"][0]["name"], "password2");
    assert!(renewed["newPasswords"][0]["value"].as_str().is_some());
    let out = env.run(&["admin", "renew", "--password-name", "password3"], None);
    assert_eq!(out.status.code(), Some(2), "clap refuses the value");
    env.fails(&["admin", "disable"]);
    assert_eq!(env.json(&["admin", "disable", "--yes"])["enabled"], false);

    // Registry settings.
    let reg = env.json(&["registry", "show"]);
    assert_eq!(reg["loginServer"], json!(server.host()));
    assert_eq!(reg["anonymousPullEnabled"], false);
    let reg = env.json(&[
        "registry",
        "update",
        "--anonymous-pull-enabled",
        "true",
        "--default-action",
        "Allow",
        "--access-token-ttl-seconds",
        "600",
    ]);
    assert_eq!(reg["anonymousPullEnabled"], true);
    assert_eq!(reg["accessTokenTtlSeconds"], 600);
    let err = env.fails(&["registry", "update"]);
    assert!(err.contains("nothing to update"), "{err}");
    let err = env.fails(&["registry", "update", "--access-token-ttl-seconds", "1"]);
    assert!(err.contains("400"), "{err}");

    // Network rules.
    let rules = env.json(&["network-rule", "add", "--ip-address", "203.0.113.0/24"]);
    assert_eq!(rules["ipRules"], json!(["203.0.113.0/24"]));
    assert_eq!(
        env.json(&["network-rule", "list"])["defaultAction"],
        "Allow"
    );
    let err = env.fails(&["network-rule", "add", "--ip-address", "not-an-ip"]);
    assert!(err.contains("400") && err.contains("ipAddress"), "{err}");
    env.fails(&["network-rule", "remove", "--ip-address", "203.0.113.0/24"]);
    env.ok(&[
        "network-rule",
        "remove",
        "--ip-address",
        "203.0.113.0/24",
        "--yes",
    ]);
    assert_eq!(env.json(&["network-rule", "list"])["ipRules"], json!([]));
}

#[tokio::test]
async fn scope_maps_and_tokens() {
    let server = TestServer::start().await;
    let env = CliEnv::new();
    env.login_owner(&server);

    let m = env.json(&[
        "scope-map",
        "create",
        "--name",
        "team-readers",
        "--repository",
        "team/app",
        "content/read",
        "metadata/read",
        "--repository",
        "shared/*",
        "content/read",
        "--description",
        "read team repos",
    ]);
    assert_eq!(
        m["actions"],
        json!([
            "repositories/team/app/content/read",
            "repositories/team/app/metadata/read",
            "repositories/shared/*/content/read"
        ])
    );
    let m = env.json(&[
        "scope-map",
        "update",
        "--name",
        "team-readers",
        "--add-repository",
        "team/app",
        "content/write",
        "--remove-repository",
        "shared/*",
        "content/read",
    ]);
    assert_eq!(
        m["actions"],
        json!([
            "repositories/team/app/content/read",
            "repositories/team/app/metadata/read",
            "repositories/team/app/content/write"
        ])
    );
    assert_eq!(m["description"], "read team repos");
    assert!(names(&env.json(&["scope-map", "list"]), "name").contains(&"_repositories_pull".into()));
    assert_eq!(
        env.json(&["scope-map", "show", "--name", "team-readers"])["system"],
        false
    );
    let err = env.fails(&[
        "scope-map",
        "create",
        "--name",
        "bad-map",
        "--repository",
        "a*",
        "content/read",
    ]);
    assert!(err.contains("400"), "{err}");
    let out = env.run(&["scope-map", "create", "--name", "bad-map"], None);
    assert_eq!(out.status.code(), Some(2), "--repository is required");

    // Tokens: by scope map, and by --repository.
    let t = env.json(&[
        "token",
        "create",
        "--name",
        "ci-pull",
        "--scope-map",
        "team-readers",
    ]);
    assert_eq!(t["scopeMap"], "team-readers");
    let pw: Vec<&str> = t["newPasswords"]
        .as_array()
        .expect("passwords")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(pw, ["password1", "password2"]);
    let t2 = env.json(&[
        "token",
        "create",
        "--name",
        "ci-push",
        "--repository",
        "team/app",
        "content/read",
        "content/write",
        "--expiration-in-days",
        "7",
    ]);
    assert_eq!(t2["scopeMap"], "ci-push-scope-map");
    let password1 = t2["newPasswords"][0]["value"]
        .as_str()
        .expect("value")
        .to_string();
    // The token works as a registry credential.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/oauth2/token?service={}&scope=repository:team/app:push",
            server.base_url(),
            server.host()
        ))
        .basic_auth("ci-push", Some(&password1))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let out = env.run(
        &[
            "token",
            "create",
            "--name",
            "both1",
            "--scope-map",
            "x",
            "--repository",
            "a",
            "content/read",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = env.fails(&[
        "token",
        "create",
        "--name",
        "ci-pull",
        "--scope-map",
        "team-readers",
    ]);
    assert!(err.contains("409"), "{err}");
    let err = env.fails(&[
        "token",
        "create",
        "--name",
        "newtok",
        "--scope-map",
        "missing-map",
    ]);
    assert!(err.contains("404") && err.contains("missing-map"), "{err}");

    env.fails(&[
        "token", "update", "--name", "ci-pull", "--status", "disabled",
    ]);
    assert_eq!(
        env.json(&["token", "update", "--name", "ci-pull", "--status", "disabled", "--yes"])
            ["status"],
        "disabled"
    );
    assert_eq!(
        env.json(&["token", "update", "--name", "ci-pull", "--status", "enabled"])["status"],
        "enabled"
    );
    let g = env.json(&[
        "token",
        "credential",
        "generate",
        "--name",
        "ci-pull",
        "--password2",
        "--expiration-in-days",
        "3",
        "--yes",
    ]);
    assert_eq!(g["newPasswords"][0]["name"], "password2");
    assert!(g["newPasswords"][0]["expiresAt"].as_u64().is_some());
    let out = env.run(
        &[
            "token",
            "credential",
            "generate",
            "--name",
            "ci-pull",
            "--yes",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "--password1 or --password2 is required"
    );
    let list = names(&env.json(&["token", "list"]), "name");
    assert_eq!(list, ["ci-pull", "ci-push"]);
    assert!(env
        .json(&["token", "show", "--name", "ci-push"])
        .get("newPasswords")
        .is_none());
    env.fails(&["token", "delete", "--name", "ci-push"]);
    env.ok(&["token", "delete", "--name", "ci-push", "--yes"]);
    env.fails(&["token", "show", "--name", "ci-push"]);
    env.ok(&[
        "scope-map",
        "delete",
        "--name",
        "ci-push-scope-map",
        "--yes",
    ]);
    let err = env.fails(&["scope-map", "delete", "--name", "team-readers", "--yes"]);
    assert!(err.contains("409"), "in use by ci-pull: {err}");
}

#[tokio::test]
async fn role_assignments_and_authorization_by_role() {
    let server = TestServer::start().await;
    let host = server.host();
    let owner = CliEnv::new();
    owner.login_owner(&server);
    owner.json(&[
        "user",
        "create",
        "--name",
        "reader",
        "--password",
        "reader-password-1",
    ]);
    owner.json(&[
        "user",
        "create",
        "--name",
        "contrib",
        "--password",
        "contrib-password-1",
    ]);
    let ra = owner.json(&[
        "role-assignment",
        "create",
        "--assignee",
        "reader",
        "--role",
        "Reader",
    ]);
    assert_eq!(ra["role"], "Reader");
    owner.json(&[
        "role-assignment",
        "create",
        "--assignee",
        "contrib",
        "--role",
        "Contributor",
    ]);
    owner.json(&[
        "role-assignment",
        "create",
        "--assignee",
        "contrib",
        "--role",
        "AcrPull",
        "--scope",
        "repositories/team/*",
    ]);
    let mine = owner.json(&["role-assignment", "list", "--assignee", "contrib"]);
    assert_eq!(mine.as_array().map(Vec::len), Some(2), "{mine}");
    let err = owner.fails(&[
        "role-assignment",
        "create",
        "--assignee",
        "reader",
        "--role",
        "Emperor",
    ]);
    assert!(err.contains("400"), "{err}");

    // A Reader reads but cannot write.
    let reader = CliEnv::new();
    reader.login(&server, "reader", "reader-password-1");
    assert!(reader.json(&["user", "list"]).as_array().is_some());
    let err = reader.fails(&["user", "create", "--name", "eve"]);
    assert!(err.contains("403") && err.contains("DENIED"), "{err}");
    // A Contributor writes but cannot assign roles.
    let contrib = CliEnv::new();
    contrib.login(&server, "contrib", "contrib-password-1");
    contrib.json(&[
        "user",
        "create",
        "--name",
        "eve",
        "--password",
        "eve-password-123",
    ]);
    let err = contrib.fails(&[
        "role-assignment",
        "create",
        "--assignee",
        "eve",
        "--role",
        "Owner",
    ]);
    assert!(err.contains("403"), "{err}");

    // -r defaults to the last login; another registry needs a login.
    let err = contrib.fails(&["user", "list", "-r", "other.example.com"]);
    assert!(err.contains("not logged in to other.example.com"), "{err}");
    contrib.json(&["user", "list", "-r", &host]);

    // Delete by assignee+role (+scope), and by id.
    let err = owner.fails(&[
        "role-assignment",
        "delete",
        "--assignee",
        "contrib",
        "--role",
        "Owner",
        "--yes",
    ]);
    assert!(err.contains("no Owner role assignment"), "{err}");
    owner.ok(&[
        "role-assignment",
        "delete",
        "--assignee",
        "contrib",
        "--role",
        "AcrPull",
        "--scope",
        "repositories/team/*",
        "--yes",
    ]);
    let id = ra["id"].as_str().expect("id").to_string();
    owner.fails(&["role-assignment", "delete", "--id", &id]);
    owner.ok(&["role-assignment", "delete", "--id", &id, "--yes"]);
    let left = owner.json(&["role-assignment", "list"]);
    let ids: Vec<String> = names(&left, "id");
    assert!(!ids.contains(&id));
    assert_eq!(
        names(
            &owner.json(&["role-assignment", "list", "--assignee", "contrib"]),
            "role"
        ),
        ["Contributor"]
    );
    let err = owner.fails(&["role-assignment", "delete", "--id", &id, "--yes"]);
    assert!(err.contains("404"), "{err}");
}

#[tokio::test]
async fn repositories_tags_and_manifests() {
    let server = TestServer::start().await;
    let env = CliEnv::new();
    env.login_owner(&server);
    let reg = server.registry();
    let one = Image::random(1, 512);
    let two = Image::random(1, 512);
    reg.push_image("team/app", "v1", &one).await;
    reg.push_image("team/app", "latest", &one).await;
    reg.push_image("team/app", "v2", &two).await;
    reg.push_image("other", "v1", &two).await;

    assert_eq!(
        env.json(&["repository", "list"]),
        json!(["other", "team/app"])
    );
    let tags = env.json(&["repository", "show-tags", "--repository", "team/app"]);
    let mut tag_names = names(&tags, "name");
    tag_names.sort();
    assert_eq!(tag_names, ["latest", "v1", "v2"]);
    let v1 = tags
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["name"] == "v1")
        .expect("v1");
    assert_eq!(v1["digest"], json!(one.digest()));
    assert_eq!(v1["size"], json!(one.manifest.len()));
    let manifests = env.json(&["repository", "show-manifests", "--repository", "team/app"]);
    assert_eq!(manifests.as_array().map(Vec::len), Some(2));
    let tsv = env.ok(&[
        "repository",
        "show-tags",
        "--repository",
        "team/app",
        "--output",
        "tsv",
    ]);
    assert!(tsv.lines().any(|l| l.starts_with("v1\tsha256:")), "{tsv}");

    env.fails(&["repository", "untag", "--image", "team/app:v1"]);
    env.ok(&["repository", "untag", "--image", "team/app:v1", "--yes"]);
    let tags = names(
        &env.json(&["repository", "show-tags", "--repository", "team/app"]),
        "name",
    );
    assert!(!tags.contains(&"v1".into()), "{tags:?}");
    let err = env.fails(&["repository", "untag", "--image", "team/app:v1", "--yes"]);
    assert!(err.contains("404"), "{err}");
    let err = env.fails(&["repository", "untag", "--image", "team/app", "--yes"]);
    assert!(err.contains("REPOSITORY:TAG"), "{err}");

    let image = format!("team/app@{}", two.digest());
    env.ok(&["repository", "delete", "--image", &image, "--yes"]);
    assert_eq!(
        env.json(&["repository", "show-manifests", "--repository", "team/app"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let err = env.fails(&[
        "repository",
        "delete",
        "--image",
        "team/app:latest",
        "--yes",
    ]);
    assert!(err.contains("REPOSITORY@DIGEST"), "{err}");
    env.fails(&["repository", "delete", "--repository", "other"]);
    env.ok(&["repository", "delete", "--repository", "other", "--yes"]);
    assert_eq!(env.json(&["repository", "list"]), json!(["team/app"]));
    let err = env.fails(&["repository", "show-tags", "--repository", "other"]);
    assert!(err.contains("404"), "{err}");
}
