//! Steps 4 and 5: the login server's name resolves, and its port accepts
//! a TCP connection.

use super::timed;
use crate::context::Ctx;
use crate::report::Finding;

/// Resolve the host.
pub async fn dns(ctx: &mut Ctx) -> Vec<Finding> {
    let host = ctx.target.host.clone();
    let lookup = timed(tokio::net::lookup_host((host.as_str(), ctx.target.port))).await;
    match lookup {
        None => {
            ctx.blocked = true;
            vec![Finding::problem(
                "DNS",
                "CONNECTIVITY_DNS_ERROR",
                format!("{host} does not resolve within 3 s (no answer from the DNS servers)"),
            )]
        }
        Some(Err(e)) => {
            ctx.blocked = true;
            vec![Finding::problem(
                "DNS",
                "CONNECTIVITY_DNS_ERROR",
                format!("{host} does not resolve: {e}"),
            )]
        }
        Some(Ok(addrs)) => {
            ctx.addrs = addrs.collect();
            if ctx.addrs.is_empty() {
                ctx.blocked = true;
                return vec![Finding::problem(
                    "DNS",
                    "CONNECTIVITY_DNS_ERROR",
                    format!("{host} resolves to no address"),
                )];
            }
            let shown: Vec<String> = ctx.addrs.iter().map(|a| a.ip().to_string()).collect();
            vec![Finding::ok("DNS", format!("{host} → {}", shown.join(", ")))]
        }
    }
}

/// Connect to the first address that answers.
pub async fn tcp(ctx: &mut Ctx) -> Vec<Finding> {
    let mut failures = Vec::new();
    for (i, addr) in ctx.addrs.clone().into_iter().enumerate() {
        match timed(tokio::net::TcpStream::connect(addr)).await {
            Some(Ok(_)) => {
                // Later steps connect to the address that answered first.
                ctx.addrs.swap(0, i);
                return vec![Finding::ok("TCP", format!("connected to {addr}"))];
            }
            Some(Err(e)) => failures.push(format!("{addr}: {e}")),
            None => failures.push(format!("{addr}: no answer within 3 s")),
        }
    }
    ctx.blocked = true;
    vec![Finding::problem(
        "TCP",
        "CONNECTIVITY_TCP_ERROR",
        format!(
            "cannot connect to port {} of {} ({})",
            ctx.target.port,
            ctx.target.host,
            failures.join("; ")
        ),
    )]
}
