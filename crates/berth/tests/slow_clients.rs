//! Slow and idle clients are cut off, and connection limits hold (issue
//! 16): many connections that send their headers one byte at a time are
//! refused or closed, while a normal client keeps being served.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A raw TCP connection to `server` leaving from the loopback address `from`.
async fn connect_from(server: &TestServer, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(
            format!("{from}:0")
                .parse::<SocketAddr>()
                .expect("bind address"),
        )
        .expect("bind");
    socket
        .connect(server.host().parse().expect("server address"))
        .await
        .expect("connect")
}

/// How a slow client's connection ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Answered at once with this status line and closed.
    Refused(String),
    /// Closed by the server while the client was still sending its head.
    Closed,
    /// Still open when the client gave up.
    StillOpen,
}

/// Send a request head one byte every 200 ms for at most `give_up`,
/// noticing when the server answers or closes.
async fn slow_headers(mut tcp: TcpStream, give_up: Duration) -> End {
    let mut buf = [0u8; 512];
    // A connection over a limit is answered before the client says a word.
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        return match text.lines().next() {
            Some(line) if n > 0 => End::Refused(format!("{line} {text}")),
            _ => End::Closed,
        };
    }
    let head = b"GET /v2/ HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let deadline = Instant::now() + give_up;
    let mut i = 0;
    while Instant::now() < deadline {
        if tcp
            .write_all(&head[i % head.len()..i % head.len() + 1])
            .await
            .is_err()
        {
            return End::Closed;
        }
        i += 1;
        match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return End::Closed,
            Ok(Ok(n)) => {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                return End::Refused(text);
            }
            Err(_) => {}
        }
    }
    End::StillOpen
}

async fn metrics(server: &TestServer) -> String {
    reqwest::get(format!("{}/metrics", server.base_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test]
async fn slow_headers_are_cut_off_while_normal_clients_are_served() {
    let server = TestServer::start_with(&[
        "--header-read-timeout",
        "2s",
        "--max-connections-per-address",
        "20",
    ])
    .await;
    // 60 slowloris connections from one address.
    let mut slow = Vec::new();
    for _ in 0..60 {
        let tcp = connect_from(&server, "127.0.0.2").await;
        slow.push(tokio::spawn(slow_headers(tcp, Duration::from_secs(30))));
    }
    // Meanwhile a normal client (another address) is served, every time.
    let client = server.client();
    for _ in 0..20 {
        let r = client
            .get(format!("{}/v2/", server.base_url()))
            .send()
            .await
            .expect("normal request completes");
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut refused = 0;
    for task in slow {
        match task.await.expect("slow client") {
            End::Refused(text) => {
                assert!(text.contains("429"), "{text}");
                assert!(text.contains("TOOMANYREQUESTS"), "{text}");
                refused += 1;
            }
            End::Closed => {}
            End::StillOpen => panic!("a slow connection was never cut off"),
        }
    }
    assert!(
        refused >= 1,
        "no connection was refused by the address limit"
    );
    // Afterwards the slow address itself is served again.
    let tcp = connect_from(&server, "127.0.0.2").await;
    let mut tcp = tcp;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.expect("read");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");

    let text = metrics(&server).await;
    assert!(
        text.contains("berth_connections_refused_total{limit=\"address\"}"),
        "{text}"
    );
    assert!(
        text.contains("berth_connections_closed_total{reason=\"header_timeout\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn idle_connections_are_closed_and_the_global_limit_answers_503() {
    let server = TestServer::start_with(&[
        "--header-read-timeout",
        "2s",
        "--idle-timeout",
        "2s",
        "--max-connections",
        "8",
    ])
    .await;
    // A kept-alive connection that goes quiet after one request is closed.
    let mut tcp = connect_from(&server, "127.0.0.3").await;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.expect("response");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf))
        .await
        .expect("the idle connection was never closed");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");

    // Eight silent connections fill the registry; the ninth is answered 503.
    let mut silent = Vec::new();
    for n in 0..8 {
        silent.push(connect_from(&server, &format!("127.0.0.{}", 10 + n)).await);
    }
    // Give the server a moment to accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let extra = connect_from(&server, "127.0.0.30").await;
    match slow_headers(extra, Duration::from_secs(1)).await {
        End::Refused(text) => {
            assert!(text.contains("503"), "{text}");
            assert!(text.contains("UNAVAILABLE"), "{text}");
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // The silent ones are cut off (no first request in time) and the
    // registry serves again.
    for mut s in silent {
        let r = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
            .await
            .expect("a silent connection was never closed");
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
    let r = server
        .client()
        .get(format!("{}/v2/", server.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
}
