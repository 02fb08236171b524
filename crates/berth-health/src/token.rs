//! Reading a JWT's claims without verifying it (only to warn about
//! expiry; the registry verifies).

use base64::Engine as _;
use serde_json::Value;

/// The claims of a compact JWS, unverified.
pub fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `exp` claim (unix seconds).
pub fn expiry(token: &str) -> Option<u64> {
    claims(token)?["exp"].as_u64()
}

/// "2d 3h", "2h 59m", "45s".
pub fn human_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_without_verifying() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1700000000}"#);
        assert_eq!(expiry(&format!("e30.{payload}.sig")), Some(1_700_000_000));
        assert_eq!(expiry("not a jwt"), None);
        assert_eq!(human_duration(10_740), "2h 59m");
        assert_eq!(human_duration(3 * 86_400 + 7200), "3d 2h");
    }
}
