//! Oversized request bodies are answered with 413 in each protocol's error
//! format, and the client reads the answer (issue 16: a 10 MiB form to
//! /oauth2/token used to get no HTTP answer at all).

mod common;

use common::login::{json_of, plain, Api};
use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const TEN_MIB: usize = 10 * 1024 * 1024;

/// A 10 MiB form body (`a=aaaa…`).
fn big_form() -> Vec<u8> {
    let mut v = b"grant_type=password&username=owner&password=".to_vec();
    v.resize(TEN_MIB, b'a');
    v
}

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: reqwest::Body,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = plain()
        .request(method, format!("{}{path}", server.base_url()))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: no HTTP answer: {e}"));
    let status = r.status();
    (status, json_of(r).await)
}

fn assert_oci(v: &Value) {
    assert_eq!(v["errors"][0]["code"], "SIZE_INVALID", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit")),
        "{v}"
    );
}

#[tokio::test]
async fn every_endpoint_answers_an_oversized_body_with_413() {
    let server = TestServer::start().await;
    let form = "application/x-www-form-urlencoded";

    // /oauth2 and /directory: OAuth's error JSON (and the OCI errors array).
    for path in ["/oauth2/token", "/oauth2/exchange", "/directory/token"] {
        let (status, v) = send(&server, Method::POST, path, form, big_form().into(), None).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {v}");
        assert_eq!(v["error"], "invalid_request", "{path}: {v}");
        assert!(v["error_description"].is_string(), "{path}: {v}");
        assert_oci(&v);
    }
    // Without Content-Length (chunked), found while reading.
    let chunks =
        futures::stream::iter((0..160).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 64 * 1024])));
    let (status, v) = send(
        &server,
        Method::POST,
        "/oauth2/token",
        form,
        reqwest::Body::wrap_stream(chunks),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"], "invalid_request", "{v}");

    // /api/v1: the management API's envelope.
    let api = Api::owner(&server).await;
    let token = common::login::owner_api(&server).await;
    let mut json = br#"{"name":"big","password":""#.to_vec();
    json.resize(TEN_MIB, b'a');
    json.extend_from_slice(br#""}"#);
    let (status, v) = send(
        &server,
        Method::POST,
        "/api/v1/users",
        "application/json",
        json.into(),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["errors"][0]["code"], "TOO_LARGE", "{v}");
    // Nothing was created.
    api.expect(Method::GET, "/api/v1/users/big", None, 404)
        .await;

    // /v2: the OCI envelope, for a manifest and for a body nobody expects.
    for (method, path) in [
        (Method::PUT, "/v2/big/manifests/latest"),
        (Method::GET, "/v2/"),
        (Method::DELETE, "/v2/big/manifests/latest"),
    ] {
        let r = server
            .client()
            .request(method.clone(), format!("{}{path}", server.base_url()))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(vec![b'{'; TEN_MIB])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no HTTP answer: {e}"));
        let status = r.status();
        let v = json_of(r).await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}: {v}"
        );
        assert_oci(&v);
    }
    // Anything else, e.g. /healthz.
    let (status, v) = send(
        &server,
        Method::POST,
        "/healthz",
        form,
        big_form().into(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_oci(&v);

    // The registry still answers normally.
    let r = server
        .client()
        .get(format!("{}/v2/", server.base_url()))
        .send()
        .await
        .expect("v2");
    assert_eq!(r.status(), 200);
}
