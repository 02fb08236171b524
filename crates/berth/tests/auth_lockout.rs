//! Failed-login throttling cannot be turned into a lockout by strangers
//! (issue 16): clients on several loopback source addresses (127.0.0.2,
//! 127.0.0.3, …) attack one account, and a correct password from an
//! address that has not been failing still gets its token. Two replicas
//! sharing one data directory throttle on the same counters.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::login::Api;
use common::TestServer;
use reqwest::StatusCode;

/// A client whose connections leave from `addr` (a loopback address).
fn from(addr: &str) -> reqwest::Client {
    let ip: IpAddr = addr.parse().expect("address");
    reqwest::Client::builder()
        .local_address(ip)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// `GET /oauth2/token` with Basic credentials from `addr`: the status.
async fn login(server: &TestServer, addr: &str, user: &str, password: &str) -> StatusCode {
    from(addr)
        .get(format!("{}/oauth2/token", server.base_url()))
        .basic_auth(user, Some(password))
        .query(&[("service", server.host())])
        .send()
        .await
        .expect("token request")
        .status()
}

/// `n` wrong passwords for `user` from each address, concurrently per
/// address; every answer must be a 401 (never throttled yet).
async fn fail_from(server: &TestServer, addrs: &[String], user: &str, n: usize) {
    let mut tasks = Vec::new();
    for addr in addrs {
        for _ in 0..n {
            tasks.push(login(server, addr, user, "not-the-password"));
        }
    }
    for status in futures::future::join_all(tasks).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

async fn metrics(server: &TestServer) -> String {
    reqwest::get(format!("{}/metrics", server.base_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

fn metric(text: &str, needle: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test]
async fn strangers_cannot_lock_out_an_account() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let password = api.user("ci-bot").await;

    // One address guessing: after 20 failures it is refused for this
    // account, even with the right password…
    fail_from(&server, &["127.0.0.2".into()], "ci-bot", 20).await;
    assert_eq!(
        login(&server, "127.0.0.2", "ci-bot", "wrong").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login(&server, "127.0.0.2", "ci-bot", &password).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …while the account's owner, elsewhere, logs in.
    assert_eq!(
        login(&server, "127.0.0.3", "ci-bot", &password).await,
        StatusCode::OK
    );

    // Many addresses guessing (3 failures each from 20 more addresses: the
    // account is under attack with 80 failures in the window).
    let botnet: Vec<String> = (1..=20).map(|n| format!("127.0.1.{n}")).collect();
    fail_from(&server, &botnet, "ci-bot", 3).await;
    // An address that has been failing for the account is refused for it…
    assert_eq!(
        login(&server, "127.0.1.7", "ci-bot", &password).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …one that has not still reaches the password check: a correct
    // password gets its token, a wrong one its 401.
    assert_eq!(
        login(&server, "127.0.0.4", "ci-bot", &password).await,
        StatusCode::OK
    );
    assert_eq!(
        login(&server, "127.0.0.5", "ci-bot", "wrong").await,
        StatusCode::UNAUTHORIZED
    );
    // The failing addresses may still log in to other accounts.
    assert_eq!(
        login(
            &server,
            "127.0.1.7",
            common::OWNER_USER,
            common::OWNER_PASSWORD
        )
        .await,
        StatusCode::OK
    );

    // One address spraying many accounts is refused for all of them after
    // 60 failures.
    let users: Vec<String> = (0..60).map(|n| format!("sprayed-{n}")).collect();
    let server_ref = &server;
    let mut tasks = Vec::new();
    for user in &users {
        tasks.push(async move { login(server_ref, "127.0.0.9", user, "wrong").await });
    }
    for status in futures::future::join_all(tasks).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&server, "127.0.0.9", "ci-bot", &password).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // The attack is visible: metrics by limit, the alarm, audit events.
    let text = metrics(&server).await;
    for limit in ["account_address", "account_under_attack", "address"] {
        let needle = format!("berth_login_throttled_total{{limit=\"{limit}\"}}");
        assert!(metric(&text, &needle) >= 1, "{needle} in\n{text}");
    }
    assert_eq!(
        metric(&text, "berth_login_account_alarms_total"),
        1,
        "{text}"
    );
    // Audit events are written in the background: poll for them.
    let mut events = Vec::new();
    for _ in 0..50 {
        let v = api
            .expect(
                reqwest::Method::GET,
                "/api/v1/logs/login?identity=ci-bot&result=429",
                None,
                200,
            )
            .await;
        events = v["events"].as_array().cloned().unwrap_or_default();
        if events.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(events.len() >= 3, "{events:?}");
    assert!(
        events.iter().all(|e| e["reason"] == "throttled"),
        "{events:?}"
    );
}

#[tokio::test]
async fn throttling_holds_across_replicas() {
    let a = TestServer::start().await;
    let b = TestServer::start_replica_of(&a).await;
    let api = Api::owner(&a).await;
    let password = api.user("shared-bot").await;

    fail_from(&a, &["127.0.0.6".into()], "shared-bot", 20).await;
    assert_eq!(
        login(&a, "127.0.0.6", "shared-bot", "wrong").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Replica b learns the shared count with its own next failure for the
    // same key, then refuses too: one extra guess per replica at most
    // (plus the time its writer takes).
    let mut extra = 0;
    loop {
        match login(&b, "127.0.0.6", "shared-bot", "wrong").await {
            StatusCode::UNAUTHORIZED => extra += 1,
            StatusCode::TOO_MANY_REQUESTS => break,
            other => panic!("unexpected {other}"),
        }
        assert!(extra <= 3, "replica b never saw replica a's failures");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(extra >= 1, "b refused before it could know");
    // Neither replica locks out the account elsewhere.
    for server in [&a, &b] {
        assert_eq!(
            login(server, "127.0.0.7", "shared-bot", &password).await,
            StatusCode::OK
        );
    }
}
