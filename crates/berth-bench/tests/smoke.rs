//! Every scenario, with tiny sizes, against a real CNCF distribution registry.
//! Asserts zero errors and non-zero throughput; never asserts timings.

mod common;

use std::time::Duration;

use berth_bench::{run_to_report, BenchArgs, Report, Scenario, Status};

/// Arguments that make every scenario finish in well under a second.
pub fn tiny(url: &str, server_pid: u32) -> BenchArgs {
    BenchArgs {
        blob_size: 3 * 1024 * 1024 + 123,
        chunk_size: 1024 * 1024,
        parallel_blobs: 3,
        parallel_size: 512 * 1024 + 7,
        layers: 4,
        layer_min_size: 1024,
        layer_max_size: 256 * 1024,
        images: 2,
        layer_concurrency: 2,
        duration: Duration::from_millis(200),
        requests: Some(40),
        connections: vec![1, 4],
        tags: 250,
        page_size: 100,
        tag_concurrency: 8,
        server_pid: vec![server_pid],
        ..BenchArgs::defaults(url).expect("defaults")
    }
}

/// Every measurement moved something and nothing failed.
pub fn assert_clean(report: &Report) {
    assert_eq!(
        report.total_errors(),
        0,
        "errors in report:\n{}",
        report.to_table()
    );
    for s in &report.scenarios {
        assert_ne!(s.status, Status::Failed, "{}: {:?}", s.scenario, s.message);
        if s.status == Status::Ok {
            assert!(
                !s.measurements.is_empty(),
                "{} measured nothing",
                s.scenario
            );
        }
        for m in &s.measurements {
            assert!(m.requests > 0, "{} / {}: no operations", s.scenario, m.name);
            assert!(
                m.requests_per_s > 0.0,
                "{} / {}: zero rate",
                s.scenario,
                m.name
            );
            assert!(m.duration_s > 0.0, "{} / {}", s.scenario, m.name);
            let server = m.server.as_ref().expect("--server-pid was given");
            assert!(
                server.peak_rss_bytes > 0,
                "{} / {}: no RSS",
                s.scenario,
                m.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_scenarios_against_distribution() {
    let Some(bin) = common::binary() else { return };
    let registry = common::Distribution::start(&bin, "").await;
    let report = run_to_report(tiny(&registry.url, registry.pid))
        .await
        .expect("bench runs");
    println!("{}", report.to_table());
    assert_clean(&report);
    assert_eq!(report.auth, "open");
    assert_eq!(report.scenarios.len(), Scenario::ALL.len());

    for name in [
        "blob-push-monolithic",
        "blob-push-chunked",
        "blob-push-parallel",
        "blob-pull-monolithic",
        "blob-pull-chunked",
        "blob-pull-parallel",
        "image-push",
        "image-pull",
        "ci-push-pull",
    ] {
        let s = report.scenario(name).expect(name);
        assert_eq!(s.status, Status::Ok, "{name}");
        assert!(
            s.measurements
                .iter()
                .all(|m| m.bytes > 0 && m.bytes_per_s > 0.0),
            "{name}"
        );
    }
    // ci-push-pull: the push, the second client's pull, its warm pull.
    let ci = report.scenario("ci-push-pull").expect("ci-push-pull");
    assert_eq!(ci.measurements.len(), 3, "three phases");
    assert!(ci.measurements[0].name.starts_with("push "));
    assert!(ci.measurements[1]
        .name
        .starts_with("pull from a second client"));
    assert!(ci.measurements[2].name.starts_with("second pull (warm)"));
    assert!(
        ci.measurements.windows(2).all(|w| w[0].bytes == w[1].bytes),
        "every phase moves the same images"
    );
    let get = report.scenario("manifest-get").expect("manifest-get");
    // by-tag and by-digest at each of the two connection levels.
    assert_eq!(get.measurements.len(), 4);
    assert!(get
        .measurements
        .iter()
        .all(|m| m.requests == 40 && m.latency.is_some()));
    let tags = report.scenario("tags-list").expect("tags-list");
    assert_eq!(tags.measurements[0].requests, 250, "one PUT per tag");
    for name in ["token-issuance", "manifest-get-auth"] {
        let s = report.scenario(name).expect(name);
        assert_eq!(s.status, Status::Skipped, "{name}");
        assert_eq!(
            s.message.as_deref(),
            Some("skipped: registry does not challenge")
        );
    }
    let json = report.to_json().expect("json");
    assert!(json.contains("\"blob-pull-parallel\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_scenarios_alone_push_their_own_data_and_reuse_it() {
    let Some(bin) = common::binary() else { return };
    let registry = common::Distribution::start(&bin, "").await;
    let mut args = tiny(&registry.url, registry.pid);
    args.scenarios = vec![Scenario::BlobPullChunked, Scenario::ImagePull];
    for _ in 0..2 {
        let report = run_to_report(args.clone()).await.expect("bench runs");
        assert_clean(&report);
        assert_eq!(report.scenarios.len(), 2);
    }
}
