//! Step 8: the realm (token endpoint) the challenge advertises is the
//! login server, or at least reachable from here — the reverse-proxy
//! mistake is a realm naming an internal host, port or scheme.

use super::timed;
use crate::context::Ctx;
use crate::report::Finding;

const NAME: &str = "realm";

/// Compare the realm with the login server and try to reach it.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let Some(challenge) = ctx.challenge.clone() else {
        return vec![Finding::ok(NAME, "no challenge, no realm to check")];
    };
    let Ok(url) = reqwest::Url::parse(&challenge.realm) else {
        return vec![super::skipped(NAME, "the realm is not a URL")];
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return vec![super::skipped(NAME, "the realm names no host")];
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let same = host.eq_ignore_ascii_case(&ctx.target.host)
        && port == ctx.target.port
        && url.scheme() == ctx.scheme.as_str();
    if same {
        return vec![Finding::ok(
            NAME,
            format!("{} is on the login server", challenge.realm),
        )];
    }
    let reach = timed(async {
        let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
            .await?
            .collect();
        let mut last = std::io::Error::other("no address");
        for a in addrs {
            match tokio::net::TcpStream::connect(a).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    })
    .await;
    let why = match reach {
        Some(Ok(())) => {
            return vec![Finding::problem(
                NAME,
                "REALM_MISMATCH_WARNING",
                format!(
                    "the realm {} is not on the login server {} ({}://{}:{}), but it is reachable",
                    challenge.realm,
                    ctx.target.host_port(),
                    ctx.scheme.as_str(),
                    ctx.target.host,
                    ctx.target.port
                ),
            )]
        }
        Some(Err(e)) => e.to_string(),
        None => "no answer within 3 s".to_string(),
    };
    vec![Finding::problem(
        NAME,
        "REALM_UNREACHABLE_ERROR",
        format!(
            "the registry sends clients to the token endpoint {}, which cannot be reached from here ({host}:{port}: {why}); clients can reach {} but not its realm",
            challenge.realm,
            ctx.target.host_port()
        ),
    )]
}
