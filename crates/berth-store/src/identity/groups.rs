//! Directory groups and their members. Membership is read fresh at every
//! login and refresh, so a change applies to the next token at once.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::{not_found, parse_uuid, unique_or, validate_display_name, IdentityRepo};
use crate::error::StoreError;
use crate::now_ms;

/// A directory group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Object id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Member user ids.
    pub members: Vec<Uuid>,
    /// Created, unix milliseconds.
    pub created_at: i64,
}

impl IdentityRepo {
    /// Create a group (name unique among groups).
    pub async fn create_group(&self, name: &str) -> Result<Uuid, StoreError> {
        validate_display_name("group", name)?;
        let id = Uuid::new_v4();
        sqlx::query("INSERT INTO directory_groups (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(now_ms())
            .execute(&self.write)
            .await
            .map_err(|e| unique_or(e, || format!("a group named {name:?} exists")))?;
        Ok(id)
    }

    /// Every group with its members, by name.
    pub async fn list_groups(&self) -> Result<Vec<GroupInfo>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM directory_groups ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get(0)?;
            let id = parse_uuid(&id, "group id")?;
            out.push(GroupInfo {
                id,
                name: r.try_get(1)?,
                members: self.group_members(id).await?,
                created_at: r.try_get(2)?,
            });
        }
        Ok(out)
    }

    /// One group with its members.
    pub async fn get_group(&self, id: Uuid) -> Result<Option<GroupInfo>, StoreError> {
        let Some(r) = sqlx::query("SELECT name, created_at FROM directory_groups WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(GroupInfo {
            id,
            name: r.try_get(0)?,
            members: self.group_members(id).await?,
            created_at: r.try_get(1)?,
        }))
    }

    /// Delete a group with its memberships and role assignments. Returns
    /// whether it existed.
    pub async fn delete_group(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM role_assignments WHERE assignee_kind = 'group' AND assignee_id = $1",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM directory_group_members WHERE group_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM directory_groups WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Add a user to a group. Returns false if it already was a member;
    /// [`StoreError::NotFound`] if either does not exist.
    pub async fn add_group_member(&self, group: Uuid, user: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        for (table, id, what) in [
            ("directory_groups", group, "group"),
            ("directory_users", user, "user"),
        ] {
            let found = sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(not_found(format!("{what} {id}")));
            }
        }
        let n = sqlx::query(
            "INSERT INTO directory_group_members (group_id, user_id, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (group_id, user_id) DO NOTHING",
        )
        .bind(group.to_string())
        .bind(user.to_string())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Remove a user from a group. Returns whether it was a member.
    pub async fn remove_group_member(&self, group: Uuid, user: Uuid) -> Result<bool, StoreError> {
        let n =
            sqlx::query("DELETE FROM directory_group_members WHERE group_id = $1 AND user_id = $2")
                .bind(group.to_string())
                .bind(user.to_string())
                .execute(&self.write)
                .await?
                .rows_affected();
        Ok(n > 0)
    }

    /// Member user ids of a group, sorted.
    pub async fn group_members(&self, group: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id FROM directory_group_members WHERE group_id = $1 ORDER BY user_id",
        )
        .bind(group.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| parse_uuid(&r.try_get::<String, _>(0)?, "member user id"))
            .collect()
    }

    /// Group ids a user belongs to, sorted.
    pub async fn groups_of(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_id FROM directory_group_members WHERE user_id = $1 ORDER BY group_id",
        )
        .bind(user.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| parse_uuid(&r.try_get::<String, _>(0)?, "member group id"))
            .collect()
    }
}
