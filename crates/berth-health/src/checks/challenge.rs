//! Step 7: `GET /v2/` without credentials — network rules (403), and the
//! `WWW-Authenticate` challenge (present, `Bearer`, realm and service).

use crate::context::{Challenge, Ctx, V2Answer};
use crate::http::send;
use crate::report::Finding;

const NAME: &str = "challenge";
const NETWORK: &str = "network rules";

/// The parameters of a `Bearer` challenge: `None` when the scheme is not
/// Bearer; a parameter list otherwise (quoted values may hold commas).
pub fn parse_bearer(header: &str) -> Option<Vec<(String, String)>> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut escaped = false;
            for c in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    _ => {
                        value.push(c);
                        escaped = false;
                    }
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(params)
}

fn malformed(message: String) -> Vec<Finding> {
    vec![
        Finding::ok(NETWORK, "GET /v2/ is not refused for this client"),
        Finding::problem(NAME, "CONNECTIVITY_WWW_AUTHENTICATE_ERROR", message),
    ]
}

/// `GET /v2/` and its challenge.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let url = format!("{}/v2/", ctx.base_url());
    let answer = match send(ctx.http.get(&url)).await {
        Ok(a) => a,
        Err(e) => {
            ctx.blocked = true;
            return vec![Finding::problem(
                NAME,
                "CONNECTIVITY_CHALLENGE_ERROR",
                format!("GET {url} failed: {e}"),
            )];
        }
    };
    let www = answer.header("www-authenticate");
    ctx.v2 = Some(V2Answer {
        status: answer.status,
        date: answer.header("date"),
    });
    if answer.status == 403 {
        ctx.blocked = true;
        return vec![Finding::problem(
            NETWORK,
            "CONNECTIVITY_FORBIDDEN_ERROR",
            format!("GET {url} → {}", answer.describe()),
        )];
    }
    if let Some(f) = answer.throttled(NAME) {
        return vec![f];
    }
    if answer.status == 200 {
        return vec![
            Finding::ok(NETWORK, "GET /v2/ is not refused for this client"),
            Finding::ok(
                NAME,
                "GET /v2/ answered 200 without credentials: this registry needs no login",
            ),
        ];
    }
    if answer.status != 401 {
        return vec![Finding::problem(
            NAME,
            "CONNECTIVITY_CHALLENGE_ERROR",
            format!(
                "GET {url} answered {} instead of 401 with a challenge",
                answer.describe()
            ),
        )];
    }
    let Some(www) = www else {
        return vec![Finding::problem(
            NAME,
            "CONNECTIVITY_CHALLENGE_ERROR",
            format!("GET {url} answered 401 without a WWW-Authenticate header"),
        )];
    };
    let Some(params) = parse_bearer(&www) else {
        return malformed(format!(
            "the challenge is not Bearer: {www:?} (the registry does not issue tokens)"
        ));
    };
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let (Some(realm), Some(service)) = (get("realm"), get("service")) else {
        return malformed(format!("the challenge lacks realm or service: {www:?}"));
    };
    match reqwest::Url::parse(&realm) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => {
            return malformed(format!(
                "the challenge's realm {realm:?} is not an http(s) URL"
            ))
        }
    }
    let message = format!("Bearer realm={realm:?} service={service:?}");
    ctx.challenge = Some(Challenge { realm, service });
    vec![
        Finding::ok(NETWORK, "GET /v2/ is not refused for this client"),
        Finding::ok(NAME, message),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): any `WWW-Authenticate` value parses or is
    /// refused without a panic; parameter names come back lowercase.
    #[test]
    fn fuzz_challenges() {
        berth_core::fuzz::run_str(
            "www_authenticate",
            &[
                r#"Bearer realm="https://r.example.com/oauth2/token",service="r.example.com",scope="repository:a:pull,push""#,
                r#"Bearer realm="a\"b",error="insufficient_scope""#,
                "Basic realm=x",
                "Bearer ,,,=,",
                "bearer realm=unquoted, service = s",
            ],
            |s| {
                if let Some(params) = parse_bearer(s) {
                    for (k, _) in params {
                        assert_eq!(k, k.to_ascii_lowercase());
                    }
                }
            },
        );
    }

    #[test]
    fn parses_bearer_challenges() {
        let p = parse_bearer(
            r#"Bearer realm="https://r.test/oauth2/token",service="r.test",scope="repository:a:pull,push""#,
        )
        .expect("bearer");
        assert_eq!(p[0], ("realm".into(), "https://r.test/oauth2/token".into()));
        assert_eq!(p[1], ("service".into(), "r.test".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a:pull,push".into()));
        assert_eq!(parse_bearer(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer("Bearer").expect("bearer"), vec![]);
        let p = parse_bearer("Bearer realm=x, service=y").expect("bearer");
        assert_eq!(p[1], ("service".into(), "y".into()));
    }
}
