//! Network rules: the client networks let in when the default network
//! action is `Deny`.

use std::net::IpAddr;

use ipnet::IpNet;
use sqlx::Row;

use super::{conflict, invalid, IdentityRepo};
use crate::error::StoreError;
use crate::now_ms;

/// Parse an IPv4/IPv6 address or CIDR and return its normalized form:
/// a bare address becomes a host network (`/32`, `/128`), host bits are
/// cleared (`10.1.2.3/8` → `10.0.0.0/8`), IPv6 is compressed and lowercase.
pub fn normalize_network_rule(rule: &str) -> Result<String, StoreError> {
    let s = rule.trim();
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
            invalid(format!(
                "network rule {rule:?} must be an IPv4 or IPv6 address or CIDR (10.0.0.0/8, 2001:db8::/32)"
            ))
        })?,
    };
    Ok(net.trunc().to_string())
}

impl IdentityRepo {
    /// The allow rules, normalized CIDRs, sorted.
    pub async fn network_rules(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT cidr FROM network_rules ORDER BY cidr")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    /// Add an allow rule (validated and normalized with
    /// [`normalize_network_rule`]); returns the stored form. A rule that
    /// is already there is a [`StoreError::Conflict`].
    pub async fn add_network_rule(&self, cidr: &str) -> Result<String, StoreError> {
        let norm = normalize_network_rule(cidr)?;
        let n = sqlx::query(
            "INSERT INTO network_rules (cidr, created_at) VALUES ($1, $2) \
             ON CONFLICT (cidr) DO NOTHING",
        )
        .bind(&norm)
        .bind(now_ms())
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(conflict(format!("network rule {norm} exists")));
        }
        Ok(norm)
    }

    /// Remove an allow rule, given in any form [`normalize_network_rule`]
    /// accepts. Returns whether it existed.
    pub async fn remove_network_rule(&self, cidr: &str) -> Result<bool, StoreError> {
        let norm = normalize_network_rule(cidr)?;
        let n = sqlx::query("DELETE FROM network_rules WHERE cidr = $1")
            .bind(&norm)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
