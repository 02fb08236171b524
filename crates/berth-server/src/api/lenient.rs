//! Whole numbers in request bodies: JSON Schema's `integer` admits `12.0`
//! (the document says `integer`, and clients such as Python's `json` may
//! write integral floats), so integer fields accept an integral number
//! however it is spelled, and refuse fractions and out-of-range values as
//! serde would.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// An optional `u64` that may be written `7`, `7.0` or `7e0`.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(v) = n.as_u64() {
        return Ok(Some(v));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Ok(Some(f as u64)),
        _ => Err(D::Error::custom(format!(
            "invalid value: {n}, expected a non-negative whole number"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::opt_u64")]
        n: Option<u64>,
    }

    fn parse(s: &str) -> Result<Option<u64>, serde_json::Error> {
        serde_json::from_str::<T>(s).map(|t| t.n)
    }

    #[test]
    fn integral_numbers_in_any_spelling() {
        assert_eq!(parse(r#"{"n":7}"#).unwrap(), Some(7));
        assert_eq!(parse(r#"{"n":7.0}"#).unwrap(), Some(7));
        assert_eq!(parse(r#"{"n":7e2}"#).unwrap(), Some(700));
        assert_eq!(parse(r#"{"n":null}"#).unwrap(), None);
        assert_eq!(parse(r#"{}"#).unwrap(), None);
        assert!(parse(r#"{"n":7.5}"#).is_err());
        assert!(parse(r#"{"n":-1}"#).is_err());
        assert!(parse(r#"{"n":"7"}"#).is_err());
    }
}
