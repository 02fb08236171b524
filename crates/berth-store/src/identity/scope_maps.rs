//! Scope maps of repository tokens. The five system maps have rows (tokens
//! reference them like any other map) but their rules always come from
//! [`ScopeMap::system`]; they cannot be changed or deleted.

use berth_auth::scope_map::ScopeMap;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{conflict, corrupt, invalid, not_found, unique_or, IdentityRepo};
use crate::error::StoreError;
use crate::now_ms;

/// Longest accepted scope-map description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 512;

/// A scope map as the management API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeMapInfo {
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Rules in stored form (`repositories/<pattern>/<action>`), normalized
    /// and deduplicated.
    pub rules: Vec<String>,
    /// One of the five built-in maps (read-only).
    pub system: bool,
    /// Created, unix milliseconds (0 for system maps).
    pub created_at: i64,
    /// Last changed, unix milliseconds.
    pub updated_at: i64,
}

fn validate(name: &str, description: &str, rules: &[String]) -> Result<ScopeMap, StoreError> {
    if ScopeMap::system(name).is_some() {
        return Err(invalid(format!(
            "{name:?} is a system scope map and cannot be changed"
        )));
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(invalid(format!(
            "a scope-map description may hold at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    ScopeMap::parse(name, rules).map_err(|e| invalid(e.to_string()))
}

fn rules_json(map: &ScopeMap) -> Result<String, StoreError> {
    let rules: Vec<String> = map.rules().iter().map(|r| r.to_string()).collect();
    serde_json::to_string(&rules).map_err(|e| StoreError::Internal(e.into()))
}

fn info(r: &AnyRow) -> Result<ScopeMapInfo, StoreError> {
    let name: String = r.try_get(0)?;
    let system = r.try_get::<i64, _>(3)? != 0;
    let rules = match ScopeMap::system(&name).filter(|_| system) {
        Some(m) => m.rules().iter().map(|r| r.to_string()).collect(),
        None => {
            let json: String = r.try_get(2)?;
            serde_json::from_str::<Vec<String>>(&json)
                .map_err(|e| corrupt(&format!("rules of scope map {name:?}"), e))?
        }
    };
    Ok(ScopeMapInfo {
        name,
        description: r.try_get(1)?,
        rules,
        system,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
    })
}

const COLUMNS: &str = "name, description, rules, system, created_at, updated_at FROM scope_maps";

impl IdentityRepo {
    /// The scope map berth-auth authorizes a token with.
    pub(super) async fn load_scope_map(&self, name: &str) -> Result<Option<ScopeMap>, StoreError> {
        if let Some(m) = ScopeMap::system(name) {
            return Ok(Some(m));
        }
        let Some(i) = self.get_scope_map(name).await? else {
            return Ok(None);
        };
        ScopeMap::parse(&i.name, &i.rules)
            .map(Some)
            .map_err(|e| corrupt(&format!("scope map {name:?}"), e))
    }

    /// Create a scope map. The name and rules are validated with
    /// [`ScopeMap::parse`] (system names are reserved); rules are stored
    /// normalized and deduplicated.
    pub async fn create_scope_map(
        &self,
        name: &str,
        description: &str,
        rules: &[String],
    ) -> Result<(), StoreError> {
        let map = validate(name, description, rules)?;
        sqlx::query(
            "INSERT INTO scope_maps (name, description, rules, system, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(name)
        .bind(description)
        .bind(rules_json(&map)?)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .map_err(|e| unique_or(e, || format!("a scope map named {name:?} exists")))?;
        Ok(())
    }

    /// Replace a user-defined scope map's description and rules. Tokens
    /// using it see the change at their next authorization.
    pub async fn update_scope_map(
        &self,
        name: &str,
        description: &str,
        rules: &[String],
    ) -> Result<(), StoreError> {
        let map = validate(name, description, rules)?;
        let n = sqlx::query(
            "UPDATE scope_maps SET description = $1, rules = $2, updated_at = $3 \
             WHERE name = $4 AND system = 0",
        )
        .bind(description)
        .bind(rules_json(&map)?)
        .bind(now_ms())
        .bind(name)
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_found(format!("scope map {name:?}")));
        }
        Ok(())
    }

    /// One scope map (system maps included).
    pub async fn get_scope_map(&self, name: &str) -> Result<Option<ScopeMapInfo>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(info).transpose()
    }

    /// Every scope map: the five system maps first, then by name.
    pub async fn list_scope_maps(&self) -> Result<Vec<ScopeMapInfo>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} ORDER BY system DESC, name"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(info).collect()
    }

    /// Delete a user-defined scope map. Refused with
    /// [`StoreError::Conflict`] while tokens use it, and with
    /// [`StoreError::Invalid`] for a system map. Returns whether it existed.
    pub async fn delete_scope_map(&self, name: &str) -> Result<bool, StoreError> {
        if ScopeMap::system(name).is_some() {
            return Err(invalid(format!(
                "{name:?} is a system scope map and cannot be deleted"
            )));
        }
        let mut tx = self.write.begin().await?;
        let users = sqlx::query(
            "SELECT name FROM repository_tokens WHERE scope_map = $1 ORDER BY name LIMIT 5",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        if !users.is_empty() {
            let names = users
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<Vec<_>, _>>()?;
            return Err(conflict(format!(
                "scope map {name:?} is used by tokens ({}); delete them or move them to another map first",
                names.join(", ")
            )));
        }
        let n = sqlx::query("DELETE FROM scope_maps WHERE name = $1 AND system = 0")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}
