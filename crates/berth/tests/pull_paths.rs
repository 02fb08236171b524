//! Every way a blob leaves the file system store: from the page cache
//! (`sendfile` on plain HTTP/1.1), from disk (read into pooled buffers), a
//! mix of both within one response, ranges across slice boundaries, HEAD,
//! a blob file shorter than recorded, and a client that goes away half-way.
//! Real HTTP against a real server; nothing here is timed.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bigger than the 4 MiB zero-copy slice, not a multiple of a page.
const BIG: usize = 9 * 1024 * 1024 + 4099;
/// A page-aligned point in the middle of a `BIG` blob.
const HALF: u64 = 4 * 1024 * 1024 + 3 * 4096;

/// The committed file of `digest` under the server's data directory.
fn blob_file(server: &TestServer, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let path = server
        .data_dir()
        .join("blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    assert!(path.exists(), "blob file {} exists", path.display());
    path
}

/// Drop `path` from `offset` to its end out of the page cache, so the
/// server has to read that part from disk (GNU dd: `iflag=nocache` with
/// `count=0` is `POSIX_FADV_DONTNEED` from `skip` to the end).
fn evict(path: &PathBuf, offset: u64) {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .expect("sync blob");
    const BS: u64 = 4096;
    assert!(offset.is_multiple_of(BS), "page-aligned offset");
    let status = std::process::Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "bs=4096"])
        .arg(format!("skip={}", offset / BS))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run dd");
    assert!(status.success(), "dd iflag=nocache");
}

/// Read `path` from `offset` to its end, so that part is in the page cache.
fn warm_from(path: &PathBuf, offset: u64) {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(path).expect("open blob");
    f.seek(std::io::SeekFrom::Start(offset)).expect("seek");
    let mut sink = Vec::new();
    f.read_to_end(&mut sink).expect("read blob");
}

/// Read `path` whole, so it is in the page cache.
fn warm(path: &PathBuf) {
    std::fs::read(path).expect("read blob");
}

/// GET `digest` (optionally with a Range header) and return status, body.
async fn get(reg: &Registry, repo: &str, digest: &str, range: Option<&str>) -> Reply {
    let mut req = reg.req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"));
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    req.send().await
}

#[tokio::test]
async fn whole_blob_from_disk_from_cache_and_mixed() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pullpaths/whole";
    let data = random_bytes(BIG);
    let digest = reg.push_blob(repo, &data).await;
    let path = blob_file(&server, &digest);

    for (how, prepare) in [
        ("from disk", 0),
        ("from the page cache", 1),
        ("first half cached", 2),
        ("second half cached", 3),
    ] {
        match prepare {
            0 => evict(&path, 0),
            1 => warm(&path),
            2 => {
                warm(&path);
                evict(&path, HALF);
            }
            _ => {
                evict(&path, 0);
                warm_from(&path, HALF);
            }
        }
        let r = get(&reg, repo, &digest, None).await;
        r.expect_status(200);
        assert_eq!(r.header("Content-Length"), Some(BIG.to_string()), "{how}");
        assert_eq!(r.body.len(), BIG, "length {how}");
        assert!(r.body == data, "bytes {how}");
    }
}

#[tokio::test]
async fn ranges_across_slice_boundaries_cold_and_warm() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pullpaths/ranges";
    let data = random_bytes(BIG);
    let digest = reg.push_blob(repo, &data).await;
    let path = blob_file(&server, &digest);
    let mib = 1024 * 1024;
    let cases: Vec<(String, usize, usize)> = vec![
        (format!("bytes=0-{}", 4 * mib - 1), 0, 4 * mib - 1),
        (
            format!("bytes={}-{}", 4 * mib - 7, 4 * mib + 7),
            4 * mib - 7,
            4 * mib + 7,
        ),
        (format!("bytes=4097-{}", 8 * mib + 1), 4097, 8 * mib + 1),
        (format!("bytes={}-", BIG - 3), BIG - 3, BIG - 1),
        ("bytes=-5000".to_string(), BIG - 5000, BIG - 1),
        ("bytes=1-1".to_string(), 1, 1),
    ];
    for cold in [true, false] {
        for (range, first, last) in &cases {
            if cold {
                evict(&path, 0);
            } else {
                warm(&path);
            }
            let r = get(&reg, repo, &digest, Some(range)).await;
            r.expect_status(206);
            assert_eq!(
                r.header("Content-Range"),
                Some(format!("bytes {first}-{last}/{BIG}")),
                "{range} cold={cold}"
            );
            assert_eq!(r.body.len(), last - first + 1, "{range} cold={cold}");
            assert!(
                r.body == data[*first..=*last],
                "bytes of {range} cold={cold}"
            );
        }
    }
    // HEAD of the same blob, cold: headers only.
    evict(&path, 0);
    let h = reg.head_blob(repo, &digest).await;
    h.expect_status(200);
    assert!(h.body.is_empty(), "HEAD has no body");
    assert_eq!(h.header("Content-Length"), Some(BIG.to_string()));
    assert_eq!(h.header("Docker-Content-Digest"), Some(digest.clone()));
}

#[tokio::test]
async fn keep_alive_connection_carries_several_sendfile_responses() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pullpaths/keepalive";
    let small = random_bytes(10_000);
    let big = random_bytes(BIG);
    let d_small = reg.push_blob(repo, &small).await;
    let d_big = reg.push_blob(repo, &big).await;
    warm(&blob_file(&server, &d_big));
    // One raw HTTP/1.1 connection, three responses back to back: each body
    // must end exactly where its Content-Length says.
    let mut tcp = tokio::net::TcpStream::connect(server.host())
        .await
        .expect("connect");
    let auth = server.raw_auth_lines();
    let mut expect = Vec::new();
    for (d, body) in [(&d_big, &big), (&d_small, &small), (&d_big, &big)] {
        let req = format!(
            "GET /v2/{repo}/blobs/{d} HTTP/1.1\r\nHost: {}\r\n{auth}\r\n",
            server.host()
        );
        tcp.write_all(req.as_bytes()).await.expect("send");
        expect.push(body);
    }
    let mut buf = Vec::new();
    for body in expect {
        let (head_end, len) = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..at]).to_lowercase();
                assert!(head.starts_with("http/1.1 200"), "status: {head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .expect("content-length")
                    .trim()
                    .parse()
                    .expect("number");
                break (at + 4, len);
            }
            read_more(&mut tcp, &mut buf).await;
        };
        assert_eq!(len, body.len());
        while buf.len() < head_end + len {
            read_more(&mut tcp, &mut buf).await;
        }
        assert!(buf[head_end..head_end + len] == body[..], "body bytes");
        buf.drain(..head_end + len);
    }
    assert!(buf.is_empty(), "no stray bytes after the last body");
}

async fn read_more(tcp: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = vec![0u8; 256 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut chunk))
        .await
        .expect("read within 30 s")
        .expect("read");
    assert!(n > 0, "connection closed early");
    buf.extend_from_slice(&chunk[..n]);
}

/// Lines of the server's memory map naming `hex` (a mapped blob file).
fn mappings_of(pid: u32, hex: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(hex))
        .count()
}

#[tokio::test]
async fn client_going_away_mid_pull_releases_the_blob() {
    let mut server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pullpaths/goaway";
    let data = random_bytes(4 * BIG);
    let digest = reg.push_blob(repo, &data).await;
    let path = blob_file(&server, &digest);
    let hex = digest.trim_start_matches("sha256:").to_string();
    let pid = server.pid().expect("server pid");
    let auth = server.raw_auth_lines();
    for cold in [false, true] {
        if cold {
            evict(&path, 0);
        } else {
            warm(&path);
        }
        let mut tcp = tokio::net::TcpStream::connect(server.host())
            .await
            .expect("connect");
        let req = format!(
            "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {}\r\n{auth}\r\n",
            server.host()
        );
        tcp.write_all(req.as_bytes()).await.expect("send");
        let mut buf = Vec::new();
        while buf.len() < 64 * 1024 {
            read_more(&mut tcp, &mut buf).await;
        }
        // Go away with most of the body unread.
        drop(tcp);
        let deadline = Instant::now() + Duration::from_secs(20);
        while mappings_of(pid, &hex) > 0 {
            assert!(
                Instant::now() < deadline,
                "blob still mapped 20 s after the client left (cold={cold})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(server.is_running(), "server survived");
    let r = get(&reg, repo, &digest, None).await;
    r.expect_status(200);
    assert!(r.body == data, "a later pull is whole");
}

#[tokio::test]
async fn blob_file_shorter_than_recorded_is_never_served_as_complete() {
    let mut server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pullpaths/short";
    let data = random_bytes(BIG);
    let digest = reg.push_blob(repo, &data).await;
    let path = blob_file(&server, &digest);
    // Damage behind the server's back: the store's invariant says this
    // never happens, so the server must not send wrong bytes as complete
    // (nor crash: a mapped page past the end would be SIGBUS).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_len((BIG / 2) as u64).expect("truncate");
    drop(f);
    let url = format!("{}/v2/{repo}/blobs/{digest}", server.base_url());
    for range in [None, Some("bytes=100-")] {
        let mut req = server.client().get(&url);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        let outcome = match req.send().await {
            Ok(resp) => resp.bytes().await.map(|b| b.len()),
            Err(e) => Err(e),
        };
        match outcome {
            Err(_) => {}
            Ok(n) => {
                panic!("a short blob file was sent as a complete body of {n} bytes ({range:?})")
            }
        }
    }
    assert!(server.is_running(), "server survived");
    // The registry still answers.
    let other = random_bytes(5000);
    let d2 = reg.push_blob(repo, &other).await;
    let r = get(&reg, repo, &d2, None).await;
    r.expect_status(200);
    assert_eq!(r.body, other);
}
