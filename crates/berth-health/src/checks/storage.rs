//! Step 7b: is the registry's storage full? `GET /healthz` without
//! credentials: berth answers `200` with the first line `storage full`
//! while writes are refused with `507 Insufficient Storage`
//! (docs/errors.md, "Storage full"). Other registries have no such
//! endpoint; then nothing is reported as wrong.

use crate::context::Ctx;
use crate::http::send;
use crate::report::Finding;

const NAME: &str = "storage";

/// What the body of a `/healthz` answer says about storage.
pub fn storage_full(body: &str) -> bool {
    body.lines()
        .next()
        .is_some_and(|l| l.trim().eq_ignore_ascii_case("storage full"))
}

/// `GET /healthz` and its first line.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let url = format!("{}/healthz", ctx.base_url());
    match send(ctx.http.get(&url)).await {
        Ok(a) if a.status == 200 && storage_full(&a.body) => {
            let detail = a.body.lines().nth(1).unwrap_or_default().trim();
            vec![Finding::problem(
                NAME,
                "STORAGE_FULL_ERROR",
                format!("GET {url}: the registry reports storage full ({detail})"),
            )]
        }
        Ok(a) if a.status == 200 => vec![Finding::ok(NAME, "the registry's storage is not full")],
        Ok(a) => vec![Finding::ok(
            NAME,
            format!("not reported: GET {url} → HTTP {}", a.status),
        )],
        Err(e) => vec![Finding::ok(
            NAME,
            format!("not reported: GET {url} failed: {e}"),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::storage_full;

    #[test]
    fn reads_the_first_line() {
        assert!(storage_full(
            "storage full\nstorage: full, 0 bytes free of 8388608; …\n"
        ));
        assert!(!storage_full("ok\nstorage: ok, 100 bytes free of 200\n"));
        assert!(!storage_full(""));
        assert!(!storage_full("ok\nstorage full\n"));
    }
}
