//! Network rules: the client's IP (honouring `X-Forwarded-For` only from
//! trusted proxies) checked against the default action and allow list.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// How long the rules read from the store are reused.
const RULES_TTL: Duration = Duration::from_secs(2);

/// The registry's network policy.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    /// Default action: true = deny clients no rule allows.
    pub deny_by_default: bool,
    /// Allowed networks.
    pub allow: Vec<IpNet>,
    /// Anonymous pull enabled (read with the rules, from the same cache).
    pub anonymous_pull: bool,
}

impl NetworkPolicy {
    /// Whether `ip` may use the registry endpoints.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if !self.deny_by_default {
            return true;
        }
        let ip = canonical(ip);
        self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 address as IPv4, so rules written for IPv4 apply.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The client's address: the connection's peer, or — when the peer is a
/// trusted proxy — the right-most untrusted address in `X-Forwarded-For`.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !trusted.iter().any(|n| n.contains(&peer)) {
        return Some(peer);
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(',') {
            if let Ok(ip) = part.trim().parse::<IpAddr>() {
                hops.push(canonical(ip));
            }
        }
    }
    Some(
        hops.into_iter()
            .rev()
            .find(|ip| !trusted.iter().any(|n| n.contains(ip)))
            .unwrap_or(peer),
    )
}

/// A short-lived cache of the policy so the store is not read per request.
#[derive(Debug, Default)]
pub struct PolicyCache {
    slot: Mutex<Option<(Instant, NetworkPolicy)>>,
}

impl PolicyCache {
    /// The cached policy if still fresh.
    pub fn get(&self) -> Option<NetworkPolicy> {
        let slot = self.slot.lock().ok()?;
        match &*slot {
            Some((at, p)) if at.elapsed() < RULES_TTL => Some(p.clone()),
            _ => None,
        }
    }

    /// Store a freshly read policy.
    pub fn put(&self, p: NetworkPolicy) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some((Instant::now(), p));
        }
    }

    /// Forget the cached policy (after a change in this process).
    pub fn clear(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): any `X-Forwarded-For` from a trusted proxy
    /// gives some address, without a panic.
    #[test]
    fn fuzz_forwarded_for() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let peer: IpAddr = "10.0.0.1".parse().expect("ip");
        berth_core::fuzz::run(
            "forwarded_for",
            &[
                b"192.0.2.1, 10.0.0.2",
                b"::ffff:192.0.2.1",
                b"2001:db8::1,,",
                b"unknown",
            ],
            |bytes| {
                let Ok(value) = axum::http::HeaderValue::from_bytes(bytes) else {
                    return;
                };
                let mut headers = HeaderMap::new();
                headers.insert("x-forwarded-for", value);
                assert!(client_ip(Some(peer), &headers, &trusted).is_some());
            },
        );
    }

    #[test]
    fn allow_list_and_proxies() {
        let p = NetworkPolicy {
            deny_by_default: true,
            allow: vec![
                "10.1.0.0/16".parse().expect("net"),
                "2001:db8::/32".parse().expect("net"),
            ],
            anonymous_pull: false,
        };
        assert!(p.allows("10.1.2.3".parse().expect("ip")));
        assert!(p.allows("::ffff:10.1.2.3".parse().expect("ip")));
        assert!(p.allows("2001:db8::1".parse().expect("ip")));
        assert!(!p.allows("10.2.0.1".parse().expect("ip")));
        assert!(NetworkPolicy::default().allows("1.2.3.4".parse().expect("ip")));

        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().expect("net")];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 127.0.0.1".parse().expect("hv"),
        );
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!(
            client_ip(Some(peer), &h, &trusted),
            Some("203.0.113.9".parse().expect("ip"))
        );
        let untrusted: IpAddr = "198.51.100.1".parse().expect("ip");
        assert_eq!(client_ip(Some(untrusted), &h, &trusted), Some(untrusted));
    }
}
