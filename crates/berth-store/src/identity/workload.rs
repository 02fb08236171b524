//! Workload identities: a client id federated with one external OIDC
//! issuer, subject and audience.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::{
    bump_generation, flag, invalid, not_found, parse_uuid, to_u64, unique_or,
    validate_display_name, IdentityRepo,
};
use crate::error::StoreError;
use crate::now_ms;

/// A workload identity as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadIdentityInfo {
    /// Client id (what the login names).
    pub client_id: Uuid,
    /// Unique display name.
    pub name: String,
    /// The trusted issuer URL; a token's `iss` must equal it exactly.
    pub issuer: String,
    /// The `sub` a token must carry.
    pub subject: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// Enabled?
    pub enabled: bool,
    /// Credential generation (bumped when disabled).
    pub generation: u64,
    /// Created, unix milliseconds.
    pub created_at: i64,
    /// Last changed, unix milliseconds.
    pub updated_at: i64,
}

/// What a new workload identity trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorkloadIdentity<'a> {
    /// Display name.
    pub name: &'a str,
    /// Issuer URL (`https://…`, or `http://` on a loopback host).
    pub issuer: &'a str,
    /// Expected subject.
    pub subject: &'a str,
    /// Expected audience.
    pub audience: &'a str,
}

const COLUMNS: &str = "client_id, name, issuer, subject, audience, enabled, generation, \
                       created_at, updated_at FROM workload_identities";

fn info(r: &AnyRow) -> Result<WorkloadIdentityInfo, StoreError> {
    let id: String = r.try_get(0)?;
    Ok(WorkloadIdentityInfo {
        client_id: parse_uuid(&id, "workload client id")?,
        name: r.try_get(1)?,
        issuer: r.try_get(2)?,
        subject: r.try_get(3)?,
        audience: r.try_get(4)?,
        enabled: r.try_get::<i64, _>(5)? != 0,
        generation: to_u64(r.try_get(6)?, "workload generation")?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
    })
}

/// The grammar of an issuer (and of a JWKS URI): `https://` and a DNS
/// name or IPv4 address, or plain `http://` on a loopback host
/// (`localhost`, `127.0.0.0/8`, `[::1]`: tests, local issuers); then an
/// optional port and path, no query or fragment. The management API's
/// document states the same pattern.
pub const ISSUER_PATTERN: &str = r"^(https://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|http://(localhost|127\.((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){2}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|\[::1\]))(:[0-9]{1,5})?(/[^?#\x00-\x20\x7f-\x9f]*)?$";

static ISSUER_RE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(ISSUER_PATTERN).expect("static regex"));

/// Check an issuer URL against [`ISSUER_PATTERN`].
pub fn validate_issuer(issuer: &str) -> Result<(), StoreError> {
    if ISSUER_RE.is_match(issuer) {
        return Ok(());
    }
    let why = if issuer.starts_with("http://") {
        "must use https (plain http only on localhost, 127.0.0.0/8 or [::1])"
    } else if issuer.starts_with("https://") {
        "must be an https URL with a DNS name or IPv4 host, an optional port and path, \
         and no query or fragment"
    } else {
        "must be an https:// URL"
    };
    Err(invalid(format!("issuer {issuer:?} {why}")))
}

fn validate_claim(what: &str, v: &str) -> Result<(), StoreError> {
    if v.is_empty() || v.chars().count() > 512 || v.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must be 1-512 characters without control characters"
        )));
    }
    Ok(())
}

impl IdentityRepo {
    /// Create an enabled workload identity; returns its client id.
    pub async fn create_workload_identity(
        &self,
        new: &NewWorkloadIdentity<'_>,
    ) -> Result<Uuid, StoreError> {
        validate_display_name("workload identity", new.name)?;
        validate_issuer(new.issuer)?;
        validate_claim("subject", new.subject)?;
        validate_claim("audience", new.audience)?;
        let client_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO workload_identities (client_id, name, issuer, subject, audience, \
             enabled, generation, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, 1, $6, $6)",
        )
        .bind(client_id.to_string())
        .bind(new.name)
        .bind(new.issuer)
        .bind(new.subject)
        .bind(new.audience)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .map_err(|e| {
            unique_or(e, || {
                format!("a workload identity named {:?} exists", new.name)
            })
        })?;
        Ok(client_id)
    }

    /// Every workload identity, by name.
    pub async fn list_workload_identities(&self) -> Result<Vec<WorkloadIdentityInfo>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(info).collect()
    }

    /// One workload identity by client id.
    pub async fn get_workload_identity(
        &self,
        client_id: Uuid,
    ) -> Result<Option<WorkloadIdentityInfo>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} WHERE client_id = $1"))
            .bind(client_id.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(info).transpose()
    }

    /// One workload identity by name (exact).
    pub async fn workload_identity_by_name(
        &self,
        name: &str,
    ) -> Result<Option<WorkloadIdentityInfo>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(info).transpose()
    }

    /// Enable or disable; disabling bumps the generation, so re-enabling
    /// does not revive older tokens.
    pub async fn set_workload_identity_enabled(
        &self,
        client_id: Uuid,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let id = client_id.to_string();
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE workload_identities SET enabled = $1, updated_at = $2 WHERE client_id = $3",
        )
        .bind(flag(enabled))
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_found(format!("no workload identity {client_id}")));
        }
        if !enabled {
            bump_generation(&mut tx, "workload_identities", "client_id", &id, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Delete a workload identity with its role assignments. Returns
    /// whether it existed.
    pub async fn delete_workload_identity(&self, client_id: Uuid) -> Result<bool, StoreError> {
        let id = client_id.to_string();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM role_assignments WHERE assignee_kind = 'service_principal' \
             AND assignee_id = $1",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query("DELETE FROM workload_identities WHERE client_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::validate_issuer;

    #[test]
    fn issuers_need_https_except_on_loopback() {
        for ok in [
            "https://token.actions.example.com",
            "https://login.example.com/tenant/v2.0",
            "http://127.0.0.1:8080",
            "http://localhost:9000/issuer",
            "http://[::1]:8080",
        ] {
            assert!(validate_issuer(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://issuer.example.com",
            "ftp://x",
            "issuer.example.com",
            "https://",
            "https://x.example.com/?q=1",
            "http://127.0.0.1.evil.com",
            "http://[::1",
            "https://[0",
            "https://x.example.com#f",
        ] {
            assert!(validate_issuer(bad).is_err(), "{bad}");
        }
    }
}
