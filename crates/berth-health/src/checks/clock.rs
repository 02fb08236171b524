//! Step 9: this machine's clock against the registry's `Date` header.

use std::time::SystemTime;

use crate::context::Ctx;
use crate::report::Finding;
use crate::token::human_duration;

const NAME: &str = "clock";
/// Tokens allow 60 s of leeway; more skew than that is reported.
const MAX_SKEW_SECS: u64 = 60;

/// Skew between `server_date` (an HTTP date) and `now`: positive when the
/// registry is ahead.
pub fn skew(server_date: &str, now: SystemTime) -> Option<i64> {
    let server = httpdate::parse_http_date(server_date).ok()?;
    Some(match server.duration_since(now) {
        Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
        Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
    })
}

/// Compare the clocks.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let Some(date) = ctx.v2.as_ref().and_then(|v| v.date.clone()) else {
        return vec![Finding::ok(
            NAME,
            "the registry sent no Date header; skew not measured",
        )];
    };
    let Some(s) = skew(&date, SystemTime::now()) else {
        return vec![Finding::ok(
            NAME,
            format!("unreadable Date header {date:?}; skew not measured"),
        )];
    };
    if s.unsigned_abs() <= MAX_SKEW_SECS {
        return vec![Finding::ok(
            NAME,
            format!("within {MAX_SKEW_SECS} s of the registry ({s:+} s)"),
        )];
    }
    let direction = if s > 0 { "ahead of" } else { "behind" };
    vec![Finding::problem(
        NAME,
        "CLOCK_SKEW_ERROR",
        format!(
            "the registry's clock is {} {direction} this machine's (Date: {date})",
            human_duration(s.unsigned_abs())
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn measures_skew_both_ways() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(600));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(skew(&later, now), Some(600));
        assert_eq!(skew(&earlier, now), Some(-90));
        assert_eq!(skew("yesterday", now), None);
    }
}
