//! Measures the digest hasher's throughput on this machine:
//! `cargo run --release -p berth-core --example hash_speed`.

fn main() {
    let buf = vec![7u8; 1 << 20];
    for alg in [berth_core::Algorithm::Sha256, berth_core::Algorithm::Sha512] {
        let mut h = alg.hasher();
        let start = std::time::Instant::now();
        for _ in 0..1024 {
            h.update(&buf);
        }
        let d = h.finish();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}: {:.0} MB/s ({})",
            alg.as_str(),
            1024.0 * 1048576.0 / secs / 1e6,
            &d.to_string()[..20]
        );
    }
}
