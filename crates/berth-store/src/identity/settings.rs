//! Registry settings: anonymous pull, the default network action, token
//! lifetimes, the retention of untagged manifests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{corrupt, flag, invalid, to_i64, to_u64, IdentityRepo};
use crate::error::StoreError;
use crate::now_ms;

/// What the network gate does with a client no rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum NetworkAction {
    /// Let every client in (the default); rules are not consulted.
    #[default]
    Allow,
    /// Let in only clients an allow rule matches.
    Deny,
}

impl NetworkAction {
    /// `Allow` or `Deny`, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            NetworkAction::Allow => "Allow",
            NetworkAction::Deny => "Deny",
        }
    }
}

impl fmt::Display for NetworkAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkAction {
    type Err = StoreError;
    /// Case-insensitive `allow` / `deny`.
    fn from_str(s: &str) -> Result<Self, StoreError> {
        if s.eq_ignore_ascii_case("allow") {
            Ok(NetworkAction::Allow)
        } else if s.eq_ignore_ascii_case("deny") {
            Ok(NetworkAction::Deny)
        } else {
            Err(invalid(format!(
                "default network action {s:?} must be Allow or Deny"
            )))
        }
    }
}

/// The registry's access settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryConfig {
    /// Anonymous pull of every repository (off by default).
    pub anonymous_pull: bool,
    /// The default network action (Allow by default).
    pub default_action: NetworkAction,
    /// Access-token lifetime in seconds (default 4500 = 75 min).
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime in seconds (default 10800 = 3 h).
    pub refresh_token_ttl_secs: u64,
    /// Identity-token lifetime in seconds (default 10800 = 3 h).
    pub identity_token_ttl_secs: u64,
    /// Whether the collector deletes untagged manifests (off by default).
    #[serde(default)]
    pub retention_enabled: bool,
    /// How long a manifest stays after it lost its last tag, days
    /// (0 ..= [`MAX_RETENTION_DAYS`], default 7).
    #[serde(default = "default_retention_days")]
    pub retention_untagged_days: u32,
}

/// Longest retention period for untagged manifests, days (ACR's limit).
pub const MAX_RETENTION_DAYS: u32 = 365;

fn default_retention_days() -> u32 {
    7
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            anonymous_pull: false,
            default_action: NetworkAction::Allow,
            access_token_ttl_secs: 4500,
            refresh_token_ttl_secs: 10800,
            identity_token_ttl_secs: 10800,
            retention_enabled: false,
            retention_untagged_days: default_retention_days(),
        }
    }
}

/// Shortest accepted token lifetime (the Docker token spec's minimum
/// `expires_in`).
pub const MIN_TOKEN_TTL_SECS: u64 = 60;
/// Longest accepted token lifetime: one year.
pub const MAX_TOKEN_TTL_SECS: u64 = 366 * 86400;

impl RegistryConfig {
    /// Check the lifetimes are within [`MIN_TOKEN_TTL_SECS`] ..=
    /// [`MAX_TOKEN_TTL_SECS`].
    pub fn validate(&self) -> Result<(), StoreError> {
        for (what, v) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("identity_token_ttl_secs", self.identity_token_ttl_secs),
        ] {
            if !(MIN_TOKEN_TTL_SECS..=MAX_TOKEN_TTL_SECS).contains(&v) {
                return Err(invalid(format!(
                    "{what} {v} must be between {MIN_TOKEN_TTL_SECS} and {MAX_TOKEN_TTL_SECS} seconds"
                )));
            }
        }
        if self.retention_untagged_days > MAX_RETENTION_DAYS {
            return Err(invalid(format!(
                "retention_untagged_days {} must be between 0 and {MAX_RETENTION_DAYS}",
                self.retention_untagged_days
            )));
        }
        Ok(())
    }
}

impl IdentityRepo {
    /// The registry settings (the defaults until changed).
    pub async fn registry_config(&self) -> Result<RegistryConfig, StoreError> {
        let row = sqlx::query(
            "SELECT anonymous_pull, default_action, access_token_ttl_secs, \
             refresh_token_ttl_secs, identity_token_ttl_secs, retention_enabled, \
             retention_untagged_days FROM registry_settings WHERE id = 1",
        )
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else {
            return Ok(RegistryConfig::default());
        };
        let action: String = r.try_get(1)?;
        Ok(RegistryConfig {
            anonymous_pull: r.try_get::<i64, _>(0)? != 0,
            default_action: action
                .parse()
                .map_err(|_| corrupt("default network action", &action))?,
            access_token_ttl_secs: to_u64(r.try_get(2)?, "access token ttl")?,
            refresh_token_ttl_secs: to_u64(r.try_get(3)?, "refresh token ttl")?,
            identity_token_ttl_secs: to_u64(r.try_get(4)?, "identity token ttl")?,
            retention_enabled: r.try_get::<i64, _>(5)? != 0,
            retention_untagged_days: u32::try_from(r.try_get::<i64, _>(6)?)
                .map_err(|_| corrupt("retention days", "out of range"))?,
        })
    }

    /// Replace the registry settings (validated first).
    pub async fn update_registry_config(&self, config: &RegistryConfig) -> Result<(), StoreError> {
        config.validate()?;
        sqlx::query(
            "INSERT INTO registry_settings (id, anonymous_pull, default_action, \
             access_token_ttl_secs, refresh_token_ttl_secs, identity_token_ttl_secs, updated_at, \
             retention_enabled, retention_untagged_days) \
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET \
             anonymous_pull = excluded.anonymous_pull, default_action = excluded.default_action, \
             access_token_ttl_secs = excluded.access_token_ttl_secs, \
             refresh_token_ttl_secs = excluded.refresh_token_ttl_secs, \
             identity_token_ttl_secs = excluded.identity_token_ttl_secs, \
             updated_at = excluded.updated_at, \
             retention_enabled = excluded.retention_enabled, \
             retention_untagged_days = excluded.retention_untagged_days",
        )
        .bind(flag(config.anonymous_pull))
        .bind(config.default_action.as_str())
        .bind(to_i64(
            config.access_token_ttl_secs,
            "access_token_ttl_secs",
        )?)
        .bind(to_i64(
            config.refresh_token_ttl_secs,
            "refresh_token_ttl_secs",
        )?)
        .bind(to_i64(
            config.identity_token_ttl_secs,
            "identity_token_ttl_secs",
        )?)
        .bind(now_ms())
        .bind(flag(config.retention_enabled))
        .bind(i64::from(config.retention_untagged_days))
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
