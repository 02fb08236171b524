//! Malformed requests never produce a 5xx and never kill the server: bad
//! headers, bad query parameters, bad bodies, raw HTTP that reqwest would
//! not send, truncated bodies.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[track_caller]
fn assert_not_5xx(r: &Reply) {
    assert!(
        !r.status.is_server_error(),
        "malformed request produced a server error\n{}",
        r.describe()
    );
    if r.status.is_client_error()
        && !r.body.is_empty()
        && r.header("Content-Type")
            .is_some_and(|ct| ct.contains("json"))
    {
        r.expect_error_envelope();
    }
}

async fn alive(reg: &Registry) {
    reg.get("/v2/").await.expect_status(200);
}

#[tokio::test]
async fn bad_headers_and_parameters_on_uploads() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "robust/uploads";
    let content_ranges = [
        "abc",
        "5-2",
        "0-",
        "-5",
        "0-99999999999999999999999",
        "bytes 0-9/10",
        "0-9, 10-19",
        "",
        "18446744073709551615-18446744073709551615",
        "0--1",
    ];
    for cr in content_ranges {
        let loc = reg.start_upload(repo).await;
        let r = reg
            .req(Method::PATCH, &loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", cr)
            .body(vec![1u8; 10])
            .send()
            .await;
        assert_not_5xx(&r);
        let r = reg
            .req(
                Method::PUT,
                &with_query(&loc, "digest", &sha256(&[1u8; 10])),
            )
            .header("Content-Range", cr)
            .body(vec![1u8; 10])
            .send()
            .await;
        assert_not_5xx(&r);
    }
    for digest in [
        "",
        ":",
        "sha256:",
        "sha256:g",
        "a:b:c",
        "SHA256:00",
        &"f".repeat(5000),
    ] {
        let url = with_query(
            &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
            "digest",
            digest,
        );
        assert_not_5xx(&reg.req(Method::POST, &url).body(b"x".to_vec()).send().await);
        let url = with_query(
            &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
            "mount",
            digest,
        );
        let url = with_query(&url, "from", "robust/other");
        assert_not_5xx(&reg.req(Method::POST, &url).send().await);
    }
    for from in ["", "UPPER", "../../etc", "a//b", &"x".repeat(3000)] {
        let url = with_query(
            &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
            "mount",
            &sha256(b"x"),
        );
        let url = with_query(&url, "from", from);
        assert_not_5xx(&reg.req(Method::POST, &url).send().await);
    }
    for id in [
        "..",
        "%2e%2e",
        "..%2f..%2fetc",
        "x%00y",
        &"u".repeat(4000),
        "a;b",
    ] {
        let p = format!("/v2/{repo}/blobs/uploads/{id}");
        assert_not_5xx(&reg.get(&p).await);
        assert_not_5xx(&reg.req(Method::PATCH, &p).body(b"zz".to_vec()).send().await);
        assert_not_5xx(&reg.delete(&p).await);
    }
    alive(&reg).await;
}

#[tokio::test]
async fn bad_range_headers_on_blob_get() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "robust/range";
    let digest = reg.push_blob(repo, &random_bytes(100)).await;
    for range in [
        "bytes=abc",
        "bytes=5-2",
        "items=0-1",
        "bytes=",
        "bytes=-",
        "bytes=0-1,5-6",
        "bytes=99999999999999999999-",
        "bytes=-0",
        "garbage",
    ] {
        let r = reg
            .req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .header("Range", range)
            .send()
            .await;
        assert_not_5xx(&r);
        // RFC 9110: an invalid or unsupported Range is either ignored (200
        // with the full body) or refused as unsatisfiable (416).
        assert!(
            matches!(r.status.as_u16(), 200 | 206 | 416),
            "Range {range:?}\n{}",
            r.describe()
        );
        if r.status.as_u16() == 200 {
            assert_eq!(r.body.len(), 100);
        }
    }
    alive(&reg).await;
}

#[tokio::test]
async fn bad_pagination_parameters() {
    let server = TestServer::start().await;
    let reg = server.registry();
    reg.push_image("robust/pages", "v1", &Image::random(1, 4))
        .await;
    for q in [
        "n=-1",
        "n=abc",
        "n=99999999999999999999999",
        "n=",
        "last=",
        "n=2&last=%00",
        "n=1.5",
        "n=2&n=3",
    ] {
        assert_not_5xx(&reg.get(&format!("/v2/robust/pages/tags/list?{q}")).await);
        assert_not_5xx(&reg.get(&format!("/v2/_catalog?{q}")).await);
    }
    assert_not_5xx(
        &reg.get(&format!(
            "/v2/robust/pages/referrers/{}?artifactType=%ff%fe",
            sha256(b"s")
        ))
        .await,
    );
    alive(&reg).await;
}

#[tokio::test]
async fn hostile_manifest_bodies() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "robust/manifests";
    reg.push_blob(repo, EMPTY_JSON).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{}}}",
        "{\"a\":".repeat(50_000) + "1" + &"}".repeat(50_000)
    );
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (OCI_MANIFEST, deep.into_bytes()),
        (OCI_MANIFEST, deep_obj.into_bytes()),
        (OCI_MANIFEST, vec![0xff, 0xfe, 0x00, 0x01]),
        (OCI_MANIFEST, b"{\"schemaVersion\":2,\"schemaVersion\":3}".to_vec()),
        (OCI_MANIFEST, b"null".to_vec()),
        (OCI_MANIFEST, b"\"string\"".to_vec()),
        (OCI_MANIFEST, format!("{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"{OCI_EMPTY}\",\"digest\":\"{EMPTY_JSON_DIGEST}\",\"size\":18446744073709551616}},\"layers\":[]}}").into_bytes()),
        (OCI_MANIFEST, format!("{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"{OCI_EMPTY}\",\"digest\":\"{EMPTY_JSON_DIGEST}\",\"size\":2}},\"layers\":[],\"subject\":{{\"digest\":\"sha256:zz\"}}}}").into_bytes()),
        (OCI_MANIFEST, format!("{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"{OCI_EMPTY}\",\"digest\":\"{EMPTY_JSON_DIGEST}\",\"size\":2}},\"layers\":[],\"subject\":\"not an object\"}}").into_bytes()),
        (OCI_INDEX, b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{}]}".to_vec()),
        (OCI_INDEX, b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":null}".to_vec()),
        ("application/x-unknown", b"{}".to_vec()),
        ("", b"{}".to_vec()),
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", b"{\"schemaVersion\":1}".to_vec()),
    ];
    for (ct, body) in bodies {
        let mut req = reg.req(Method::PUT, &format!("/v2/{repo}/manifests/v1"));
        if !ct.is_empty() {
            req = req.header("Content-Type", ct);
        }
        let r = req.body(body).send().await;
        assert_not_5xx(&r);
        assert!(
            r.status.is_client_error(),
            "hostile manifest must be refused\n{}",
            r.describe()
        );
    }
    alive(&reg).await;
}

/// Send raw bytes, half-close, and read the status line of the answer (if
/// any). Returns None when the server closed without answering.
async fn raw(server: &TestServer, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(server.host()).await.expect("connect");
    s.write_all(request).await.expect("write");
    let _ = s.shutdown().await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn raw_http_edge_cases() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "robust/raw";
    reg.push_blob(repo, b"seed").await;
    let host = server.host();
    let auth = server.raw_auth_lines();

    // A body shorter than its Content-Length: the upload must not complete.
    let data = b"only ten b";
    let digest = sha256(b"only ten bytes, then twenty more!!!!!!!");
    let req = format!(
        "POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: 40\r\n\r\n"
    );
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(data);
    if let Some(status) = raw(&server, &bytes).await {
        assert!(status < 500, "truncated single POST answered {status}");
        assert_ne!(status, 201, "a truncated body must not create a blob");
    }
    reg.head_blob(repo, &digest).await.expect_status(404);

    // Truncated PATCH: whatever the server kept, the session offset must
    // describe real bytes and the blob must not appear.
    let loc = reg.start_upload(repo).await;
    let path = loc
        .strip_prefix(&server.base_url())
        .unwrap_or(&loc)
        .to_string();
    let mut bytes = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(&[9u8; 100]);
    if let Some(status) = raw(&server, &bytes).await {
        assert!(status < 500, "truncated PATCH answered {status}");
    }
    let st = reg.get(&loc).await;
    assert_not_5xx(&st);

    let cases: Vec<String> = vec![
        format!("GET /v2/{repo}/blobs/{} HTTP/1.1\r\nHost: {host}\r\n{auth}Range: bytes=\u{0}\r\n\r\n", sha256(b"seed")),
        format!("GET /v2/%zz/tags/list HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"),
        format!("GET /v2/{repo}/manifests/%00 HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"),
        format!("GET /v2/../../etc/passwd HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"),
        format!("GET /v2/{repo}/blobs/..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"),
        format!("PUT /v2/{repo}/manifests/v1 HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: {OCI_MANIFEST}\r\nContent-Length: 5\r\n\r\n{{\"a\""),
        format!("PUT /v2/{repo}/manifests/v1 HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        format!("BREW /v2/ HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"),
        format!("DELETE /v2/{repo}/tags/list HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"),
        format!("PATCH /v2/{repo}/manifests/v1 HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 0\r\n\r\n"),
        format!("POST /v2/{repo}/blobs/uploads/ HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: -1\r\n\r\n"),
        format!("POST /v2/{repo}/blobs/uploads/ HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 99999999999999999999999\r\n\r\n"),
        "NOT HTTP AT ALL\r\n\r\n".to_string(),
    ];
    for c in cases {
        if let Some(status) = raw(&server, c.as_bytes()).await {
            assert!(
                status < 500,
                "raw request {:?} answered {status}",
                c.lines().next()
            );
        }
    }
    alive(&reg).await;
    // The traversal attempts found nothing.
    let r = reg.get("/v2/../../etc/passwd").await;
    assert!(!r.text().contains("root:"), "path traversal");
}

#[tokio::test]
async fn wrong_methods_are_client_errors() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "robust/methods";
    let img = Image::random(1, 4);
    reg.push_image(repo, "v1", &img).await;
    let blob = sha256(&img.layers[0]);
    for (m, p) in [
        (Method::POST, format!("/v2/{repo}/manifests/v1")),
        (Method::PATCH, format!("/v2/{repo}/manifests/v1")),
        (Method::PUT, format!("/v2/{repo}/blobs/{blob}")),
        (Method::POST, format!("/v2/{repo}/blobs/{blob}")),
        (Method::PUT, format!("/v2/{repo}/tags/list")),
        (Method::DELETE, format!("/v2/{repo}/tags/list")),
        (Method::POST, "/v2/".to_string()),
        (Method::DELETE, "/v2/_catalog".to_string()),
        (
            Method::PUT,
            format!("/v2/{repo}/referrers/{}", img.digest()),
        ),
    ] {
        let r = reg.req(m.clone(), &p).send().await;
        assert!(
            r.status.is_client_error(),
            "{m} {p} must be a 4xx (405 or 404)\n{}",
            r.describe()
        );
    }
    // Nothing was changed by them.
    assert_eq!(reg.get_manifest(repo, "v1").await.body, img.manifest);
}

/// Read one HTTP/1.1 response (head + Content-Length body) from `s`.
/// Returns None if the connection closed before a full response arrived.
async fn read_response(s: &mut TcpStream) -> Option<(u16, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut tmp))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut tmp))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some((status, headers, body))
}

#[tokio::test]
async fn refused_request_with_unread_body_keeps_the_connection_honest() {
    // A server that answers before reading the request body must either
    // keep the connection usable for the next request or announce that it
    // will close it ("Connection: close", RFC 9112 §9.6). Closing silently
    // makes pooling clients (reqwest, Go's net/http, containerd) fail their
    // next request on that connection with a transport error.
    let server = TestServer::start().await;
    let reg = server.registry();
    let host = server.host();
    let auth = server.raw_auth_lines();
    let body = random_bytes(32 * 1024);
    let loc = reg.start_upload("robust/keepalive").await;
    let loc_path = loc
        .strip_prefix(&server.base_url())
        .unwrap_or(&loc)
        .to_string();
    let cases = [
        (
            "out-of-order PATCH (416)",
            format!("PATCH {loc_path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/octet-stream\r\nContent-Range: 100-{}\r\nContent-Length: {}\r\n\r\n", 100 + body.len() - 1, body.len()),
        ),
        (
            "PATCH to an unknown session (404)",
            format!("PATCH /v2/robust/keepalive/blobs/uploads/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", body.len()),
        ),
        (
            "single POST to an invalid name (400)",
            format!("POST /v2/Invalid/blobs/uploads/?digest={} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", sha256(&body), body.len()),
        ),
    ];
    let mut failures = vec![];
    for (what, head) in cases {
        let mut s = TcpStream::connect(&host).await.expect("connect");
        let mut req = head.into_bytes();
        req.extend_from_slice(&body);
        s.write_all(&req).await.expect("write request");
        let (status, headers, _) = read_response(&mut s)
            .await
            .unwrap_or_else(|| panic!("{what}: no response"));
        assert!(
            (400..500).contains(&status),
            "{what}: expected a 4xx, got {status}"
        );
        let announces_close = headers
            .iter()
            .any(|(k, v)| k == "connection" && v.to_ascii_lowercase().contains("close"));
        if announces_close {
            continue;
        }
        let wrote = s
            .write_all(format!("GET /v2/ HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n").as_bytes())
            .await
            .is_ok();
        let next = if wrote {
            read_response(&mut s).await
        } else {
            None
        };
        if !matches!(next, Some((200, _, _))) {
            failures.push(format!(
                "{what}: the server answered {status} without `Connection: close`, then dropped \
                 the kept-alive connection instead of answering the next request (got {:?})",
                next.map(|n| n.0)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn large_refused_chunk_is_answered_not_reset() {
    // spec: an out-of-order chunk "MUST" get a 416. A client that sends
    // the whole request before reading (Python's http.client, curl without
    // Expect, many scripts) only sees it if the server closes gracefully.
    // RFC 9112 §9.6: "If a server performs an immediate close of a TCP
    // connection, there is a significant risk that the client will not be
    // able to read the last HTTP response ... servers typically close a
    // connection in stages": half-close, keep reading until the client is
    // done, then close. Closing with unread request bytes makes the kernel
    // send RST and the 416 is lost. This client writes everything, then reads.
    let server = TestServer::start().await;
    let reg = server.registry();
    let loc = reg.start_upload("robust/big-416").await;
    let loc_path = loc
        .strip_prefix(&server.base_url())
        .unwrap_or(&loc)
        .to_string();
    let host = server.host();
    let chunk = random_bytes(8 * 1024 * 1024);
    let auth = server.raw_auth_lines();
    let mut outcomes = vec![];
    for _ in 0..3 {
        let mut s = TcpStream::connect(&host).await.expect("connect");
        let mut req = format!(
            "PATCH {loc_path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/octet-stream\r\nContent-Range: 1000-{}\r\nContent-Length: {}\r\n\r\n",
            1000 + chunk.len() - 1,
            chunk.len()
        )
        .into_bytes();
        req.extend_from_slice(&chunk);
        let outcome = match s.write_all(&req).await {
            Err(e) => format!("connection torn down while sending the chunk: {e}"),
            Ok(()) => match read_response(&mut s).await {
                Some((status, _, _)) => status.to_string(),
                None => "connection closed without an answer".to_string(),
            },
        };
        outcomes.push(outcome);
    }
    assert!(
        outcomes.iter().all(|o| o == "416"),
        "out-of-order 8 MiB PATCH outcomes: {outcomes:?}"
    );
}
