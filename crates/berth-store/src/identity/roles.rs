//! Role assignments. They are read at every authorization, so creating or
//! removing one applies to the next token at once.

use berth_auth::role::{Assignee, Role, RoleAssignment, RoleScope};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::{corrupt, not_found, parse_uuid, unique_or, IdentityRepo};
use crate::error::StoreError;
use crate::now_ms;

/// A stored role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignmentInfo {
    /// Assignment id.
    pub id: Uuid,
    /// Who, what, where.
    #[serde(flatten)]
    pub assignment: RoleAssignment,
    /// Created, unix milliseconds.
    pub created_at: i64,
}

/// `(kind, id)` as stored.
fn assignee_key(a: &Assignee) -> (&'static str, String) {
    match a {
        Assignee::User(id) => ("user", id.to_string()),
        Assignee::Group(id) => ("group", id.to_string()),
        Assignee::ServicePrincipal(id) => ("service_principal", id.to_string()),
    }
}

fn assignee_from(kind: &str, id: &str) -> Result<Assignee, StoreError> {
    let id = parse_uuid(id, "assignee id")?;
    match kind {
        "user" => Ok(Assignee::User(id)),
        "group" => Ok(Assignee::Group(id)),
        "service_principal" => Ok(Assignee::ServicePrincipal(id)),
        other => Err(corrupt("assignee kind", other)),
    }
}

fn info(r: &AnyRow) -> Result<RoleAssignmentInfo, StoreError> {
    let id: String = r.try_get(0)?;
    let kind: String = r.try_get(1)?;
    let assignee: String = r.try_get(2)?;
    let role: String = r.try_get(3)?;
    let scope: String = r.try_get(4)?;
    Ok(RoleAssignmentInfo {
        id: parse_uuid(&id, "role assignment id")?,
        assignment: RoleAssignment {
            assignee: assignee_from(&kind, &assignee)?,
            role: role.parse::<Role>().map_err(|e| corrupt("role", e))?,
            scope: scope
                .parse::<RoleScope>()
                .map_err(|e| corrupt("role scope", e))?,
        },
        created_at: r.try_get(5)?,
    })
}

const COLUMNS: &str =
    "id, assignee_kind, assignee_id, role, scope, created_at FROM role_assignments";

impl IdentityRepo {
    /// Give `assignee` the `role` on `scope`. The assignee must exist
    /// ([`StoreError::NotFound`]); the same assignment twice is a
    /// [`StoreError::Conflict`]. Returns the assignment's id.
    pub async fn create_role_assignment(
        &self,
        assignee: &Assignee,
        role: Role,
        scope: &RoleScope,
    ) -> Result<Uuid, StoreError> {
        let (kind, assignee_id) = assignee_key(assignee);
        // A service-principal assignee may also be a workload identity's
        // client id (both log in as an application).
        let exists = match assignee {
            Assignee::User(_) => "SELECT 1 FROM directory_users WHERE id = $1",
            Assignee::Group(_) => "SELECT 1 FROM directory_groups WHERE id = $1",
            Assignee::ServicePrincipal(_) => {
                "SELECT 1 FROM service_principals WHERE app_id = $1 \
                 UNION ALL SELECT 1 FROM workload_identities WHERE client_id = $1"
            }
        };
        let id = Uuid::new_v4();
        let mut tx = self.write.begin().await?;
        let found = sqlx::query(exists)
            .bind(&assignee_id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(not_found(assignee.to_string()));
        }
        sqlx::query(
            "INSERT INTO role_assignments (id, assignee_kind, assignee_id, role, scope, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(kind)
        .bind(&assignee_id)
        .bind(role.as_str())
        .bind(scope.to_string())
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            unique_or(e, || {
                format!("{role} on {scope} for {assignee} is already assigned")
            })
        })?;
        tx.commit().await?;
        Ok(id)
    }

    /// Role assignments, all or those of one assignee, oldest first.
    pub async fn list_role_assignments(
        &self,
        assignee: Option<&Assignee>,
    ) -> Result<Vec<RoleAssignmentInfo>, StoreError> {
        let rows = match assignee {
            None => {
                sqlx::query(&format!("SELECT {COLUMNS} ORDER BY created_at, id"))
                    .fetch_all(&self.read)
                    .await?
            }
            Some(a) => {
                let (kind, id) = assignee_key(a);
                sqlx::query(&format!(
                    "SELECT {COLUMNS} WHERE assignee_kind = $1 AND assignee_id = $2 \
                     ORDER BY created_at, id"
                ))
                .bind(kind)
                .bind(id)
                .fetch_all(&self.read)
                .await?
            }
        };
        rows.iter().map(info).collect()
    }

    /// One role assignment by id.
    pub async fn get_role_assignment(
        &self,
        id: Uuid,
    ) -> Result<Option<RoleAssignmentInfo>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(info).transpose()
    }

    /// Remove a role assignment. Returns whether it existed.
    pub async fn delete_role_assignment(&self, id: Uuid) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM role_assignments WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The assignments naming any of `assignees` (for berth-auth).
    pub(super) async fn load_role_assignments(
        &self,
        assignees: &[Assignee],
    ) -> Result<Vec<RoleAssignment>, StoreError> {
        let mut out = Vec::new();
        for a in assignees {
            for i in self.list_role_assignments(Some(a)).await? {
                out.push(i.assignment);
            }
        }
        Ok(out)
    }
}
