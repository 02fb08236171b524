//! Garbage-collection benchmark (docs/performance.md, "Garbage collection").
//!
//! `cargo run --release -p berth-store --example gc_bench -- [MANIFESTS]`
//! builds an embedded registry (filesystem + SQLite) with MANIFESTS
//! manifests (default 100,000) and twice as many blobs, of which 10% are
//! garbage (linked, referenced by no manifest, older than the grace
//! period), then measures push and pull throughput and latency without a
//! collection and while one runs, and the collection's duration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::{Digest, Reference, RepositoryName};
use berth_store::gc::{GcOptions, GcStart};
use berth_store::{BlobBackend, BlobRead, ManifestValidation, Registry};
use bytes::Bytes;

const REPOS: usize = 100;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const WORKERS: usize = 4;

fn digest_of(i: usize) -> (Digest, Vec<u8>) {
    let data = format!("bench blob {i:08}").into_bytes();
    (Digest::sha256(&data), data)
}

fn manifest_json(config: &Digest, layers: &[&Digest]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|d| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": 19}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 19},
        "layers": layers,
    }))
    .unwrap_or_default()
}

async fn insert_rows(reg: &Registry, table: &str, cols: &[&str], rows: Vec<Vec<Value>>) {
    for chunk in rows.chunks(400) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
        let mut n = 1;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..cols.len() {
                if c > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${n}"));
                n += 1;
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    Value::I(x) => q.bind(*x),
                    Value::S(s) => q.bind(s.clone()),
                    Value::B(b) => q.bind(b.clone()),
                };
            }
        }
        q.execute(reg.meta().write_pool()).await.expect("insert");
    }
}

enum Value {
    I(i64),
    S(String),
    B(Vec<u8>),
}

async fn populate(reg: &Registry, manifests: usize) -> usize {
    let blobs = manifests * 2;
    let referenced = blobs * 9 / 10;
    let two_blob_manifests = referenced - manifests; // the rest have one
    let old = berth_store::now_ms() - 2 * 86_400_000;
    let BlobBackend::Filesystem(fs) = reg.blob_backend() else {
        panic!("filesystem backend expected")
    };
    // Bytes.
    let fs = fs.clone();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let fs = fs.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            for i in (w..blobs).step_by(4) {
                let (d, data) = digest_of(i);
                let p = fs.blob_path(&d);
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir).expect("dir");
                }
                std::fs::write(&p, data).expect("write blob");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    eprintln!("wrote {blobs} blob files in {:?}", t.elapsed());
    let t = Instant::now();
    // Which repository blob i belongs to, and manifest m's blobs.
    let blobs_of = |m: usize| -> Vec<usize> {
        if m < two_blob_manifests {
            vec![2 * m, 2 * m + 1]
        } else {
            vec![2 * two_blob_manifests + (m - two_blob_manifests)]
        }
    };
    let mut repo_of_blob = vec![0usize; blobs];
    for m in 0..manifests {
        for b in blobs_of(m) {
            repo_of_blob[b] = m % REPOS;
        }
    }
    for (i, r) in repo_of_blob.iter_mut().enumerate().skip(referenced) {
        *r = i % REPOS;
    }
    insert_rows(
        reg,
        "repositories",
        &["id", "name", "created_at"],
        (0..REPOS)
            .map(|r| {
                vec![
                    Value::I(r as i64 + 1),
                    Value::S(format!("bench/r{r:03}")),
                    Value::I(old),
                ]
            })
            .collect(),
    )
    .await;
    let digests: Vec<String> = (0..blobs).map(|i| digest_of(i).0.to_string()).collect();
    insert_rows(
        reg,
        "blobs",
        &["digest", "size", "created_at"],
        digests
            .iter()
            .map(|d| vec![Value::S(d.clone()), Value::I(19), Value::I(old)])
            .collect(),
    )
    .await;
    insert_rows(
        reg,
        "repository_blobs",
        &["repository_id", "digest", "created_at"],
        digests
            .iter()
            .enumerate()
            .map(|(i, d)| {
                vec![
                    Value::I(repo_of_blob[i] as i64 + 1),
                    Value::S(d.clone()),
                    Value::I(old),
                ]
            })
            .collect(),
    )
    .await;
    let mut mrows = Vec::with_capacity(manifests);
    let mut refs = Vec::new();
    let mut tags = Vec::new();
    for m in 0..manifests {
        let bs = blobs_of(m);
        let ds: Vec<Digest> = bs.iter().map(|b| digest_of(*b).0).collect();
        let layers: Vec<&Digest> = ds.iter().skip(1).collect();
        let content = manifest_json(&ds[0], &layers);
        let md = Digest::sha256(&content).to_string();
        let repo_id = (m % REPOS) as i64 + 1;
        for d in &ds {
            refs.push(vec![
                Value::I(repo_id),
                Value::S(md.clone()),
                Value::S(d.to_string()),
            ]);
        }
        tags.push(vec![
            Value::I(repo_id),
            Value::S(format!("t{m}")),
            Value::S(md.clone()),
            Value::I(old),
        ]);
        mrows.push(vec![
            Value::I(repo_id),
            Value::S(md),
            Value::S(OCI_MANIFEST.to_string()),
            Value::I(content.len() as i64),
            Value::B(content),
            Value::I(old),
            Value::I(1),
        ]);
    }
    insert_rows(
        reg,
        "manifests",
        &[
            "repository_id",
            "digest",
            "media_type",
            "size",
            "content",
            "created_at",
            "refs_recorded",
        ],
        mrows,
    )
    .await;
    insert_rows(
        reg,
        "manifest_blobs",
        &["repository_id", "manifest_digest", "digest"],
        refs,
    )
    .await;
    insert_rows(
        reg,
        "tags",
        &["repository_id", "name", "digest", "updated_at"],
        tags,
    )
    .await;
    eprintln!("wrote the metadata in {:?}", t.elapsed());
    blobs - referenced
}

#[derive(Default)]
struct Stats {
    push: Vec<Duration>,
    pull: Vec<Duration>,
}

fn summary(name: &str, mut v: Vec<Duration>, secs: f64) -> String {
    v.sort();
    let q = |f: f64| {
        v.get(((v.len() as f64 * f) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    format!(
        "{name}: {} ops, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        v.len(),
        v.len() as f64 / secs,
        q(0.5).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    )
}

/// Pushes (two small blobs and a manifest) and pulls (a tag and its config
/// blob) from WORKERS tasks each, until `stop`.
async fn workload(
    reg: Arc<Registry>,
    stop: Arc<AtomicBool>,
    manifests: usize,
    seed: usize,
) -> Stats {
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let reg = reg.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = Stats::default();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let repo: RepositoryName = format!("bench/r{:03}", (w * 7 + i) % REPOS)
                    .parse()
                    .expect("name");
                // Push.
                let t = Instant::now();
                let mut ds = Vec::new();
                for k in 0..2 {
                    let data = Bytes::from(format!("new {seed} {w} {i} {k}").repeat(32));
                    let d = Digest::sha256(&data);
                    let body: berth_store::ByteStream =
                        Box::pin(futures::stream::iter([Ok::<_, std::io::Error>(
                            data.clone(),
                        )]));
                    reg.put_blob(&repo, &d, body, Some(data.len() as u64))
                        .await
                        .expect("push blob");
                    ds.push(d);
                }
                let m = manifest_json(&ds[0], &[&ds[1]]);
                reg.put_manifest(
                    &repo,
                    &Reference::Tag(format!("n{seed}-{w}-{i}").parse().expect("tag")),
                    &[],
                    Some(OCI_MANIFEST),
                    &m,
                    &ManifestValidation::default(),
                )
                .await
                .expect("push manifest");
                s.push.push(t.elapsed());
                // Pull.
                let t = Instant::now();
                let m = (w * 7919 + i * 104_729) % manifests;
                let repo: RepositoryName =
                    format!("bench/r{:03}", m % REPOS).parse().expect("name");
                let got = reg
                    .get_manifest(
                        &repo,
                        &Reference::Tag(format!("t{m}").parse().expect("tag")),
                    )
                    .await
                    .expect("pull")
                    .expect("manifest present");
                let info =
                    berth_core::manifest::parse_manifest(Some(&got.media_type), &got.content)
                        .expect("parse");
                if let Some(BlobRead::File { mut file, .. }) =
                    reg.read_blob(&repo, &info.blobs[0]).await.expect("blob")
                {
                    use tokio::io::AsyncReadExt;
                    let mut v = Vec::new();
                    file.read_to_end(&mut v).await.expect("read");
                } else {
                    panic!("config blob missing");
                }
                s.pull.push(t.elapsed());
            }
            s
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        let s = t.await.expect("worker");
        all.push.extend(s.push);
        all.pull.extend(s.pull);
    }
    all
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let manifests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tmp");
    let reg = Arc::new(Registry::open(dir.path()).await.expect("open"));
    let garbage = populate(&reg, manifests).await;
    println!(
        "data: {manifests} manifests, {} blobs, {garbage} garbage",
        manifests * 2
    );

    // Without a collection.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(workload(reg.clone(), stop.clone(), manifests, 0));
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::Relaxed);
    let base = load.await.expect("load");
    let secs = t.elapsed().as_secs_f64();
    println!("without gc ({secs:.1} s):");
    println!("  {}", summary("push", base.push, secs));
    println!("  {}", summary("pull", base.pull, secs));

    // A collection alone (dry run: what it finds, no deletion).
    let t = Instant::now();
    let dry = match reg
        .collector()
        .run(&GcOptions {
            dry_run: true,
            ..GcOptions::default()
        })
        .await
        .expect("dry")
    {
        GcStart::Ran(r) => r,
        GcStart::Busy(_) => panic!("busy"),
    };
    println!(
        "dry run: {} links, {} blobs in {:.2} s",
        dry.links,
        dry.blobs,
        t.elapsed().as_secs_f64()
    );

    // The collection, with the same load running.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(workload(reg.clone(), stop.clone(), manifests, 1));
    let t = Instant::now();
    let run = match reg
        .collector()
        .run(&GcOptions::default())
        .await
        .expect("gc")
    {
        GcStart::Ran(r) => r,
        GcStart::Busy(_) => panic!("busy"),
    };
    let gc_secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let during = load.await.expect("load");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "gc under load: {} links, {} blobs, {} bytes in {gc_secs:.2} s",
        run.links, run.blobs, run.bytes_freed
    );
    println!("during gc ({secs:.1} s):");
    println!("  {}", summary("push", during.push, secs));
    println!("  {}", summary("pull", during.pull, secs));
    assert_eq!(run.links as usize, garbage);
    assert_eq!(run.blobs as usize, garbage);
}
