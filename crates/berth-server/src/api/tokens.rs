//! `/api/v1/tokens`: repository-scoped tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_store::identity::TokenInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::scope_maps::check_rules;
use super::{expiry, hash_secret, ApiState, SecretView};

/// A token (never its password hashes).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    /// Name: the Basic username.
    pub name: String,
    /// The scope map granting its permissions.
    pub scope_map: String,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Its passwords (names and expiry only).
    pub passwords: Vec<SecretView>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

impl From<TokenInfo> for TokenView {
    fn from(t: TokenInfo) -> Self {
        TokenView {
            name: t.name,
            scope_map: t.scope_map,
            status: if t.enabled { "enabled" } else { "disabled" }.into(),
            passwords: t.passwords.into_iter().map(SecretView::from).collect(),
            created_at: t.created_at,
        }
    }
}

/// Repository permissions for a token created without a scope map.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryActions {
    /// Repository name or pattern (`team/*`, `*`): a repository name of at
    /// most 255 characters, optionally followed by `/*`.
    #[schema(
        pattern = r"^(\*|(?=[a-z0-9._/-]{1,255}(/\*)?$)[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*(/\*)?)$"
    )]
    pub repository: String,
    /// `content/read`, `content/write`, `content/delete`, `metadata/read`, `metadata/write`.
    #[schema(schema_with = action_list)]
    pub actions: Vec<String>,
}

/// At most this many entries in `repositories` ...
const MAX_REPOSITORY_ENTRIES: usize = 100;
/// ... with at most this many actions each: at most 500 rules, the most a
/// scope map holds.
const MAX_ACTIONS: usize = 5;

/// `actions` of [`RepositoryActions`]: up to five action names.
fn action_list() -> utoipa::openapi::schema::Array {
    use berth_auth::scope_map::ScopeMapAction;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(ScopeMapAction::ALL.iter().map(|a| a.as_str()))),
        )
        .max_items(Some(MAX_ACTIONS))
        .build()
}

/// `POST /api/v1/tokens`: exactly one of `scopeMap` and `repositories`
/// (the document says so with a `oneOf`, see [`CreateToken`]'s schema).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateToken {
    /// 5-50 characters of `[a-zA-Z0-9-]` (5-40 with `repositories`, whose
    /// scope map is called `<name>-scope-map`).
    pub name: String,
    /// An existing scope map; or give `repositories`.
    pub scope_map: Option<String>,
    /// Creates the scope map `<name>-scope-map` with these permissions.
    pub repositories: Option<Vec<RepositoryActions>>,
    /// Password validity in days (no expiry when absent).
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    pub expiration_in_days: Option<u64>,
}

/// The two shapes of a [`CreateToken`] body, as a `oneOf`: a name with
/// `scopeMap`, or a (shorter) name with `repositories`.
impl utoipa::PartialSchema for CreateToken {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
        };
        let name = |max: u32| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^[a-zA-Z0-9-]{{5,{max}}}$")))
                .description(Some(format!(
                    "5-{max} characters of `[a-zA-Z0-9-]`, not the registry's name"
                )))
        };
        let days = || {
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                .minimum(Some(1))
                .maximum(Some(3650))
                .description(Some("Password validity in days (no expiry when absent)."))
        };
        let absent = || {
            ObjectBuilder::new()
                .schema_type(Type::Null)
                .description(Some("Only with the other shape."))
        };
        let with_map = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("with scopeMap"))
            .property("name", name(50))
            .required("name")
            .property(
                "scopeMap",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("An existing scope map.")),
            )
            .required("scopeMap")
            .property("repositories", absent())
            .property("expirationInDays", days())
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let with_repositories = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("with repositories"))
            .property("name", name(40))
            .required("name")
            .property(
                "repositories",
                ArrayBuilder::new()
                    .items(<RepositoryActions as utoipa::PartialSchema>::schema())
                    .max_items(Some(MAX_REPOSITORY_ENTRIES))
                    .description(Some(
                        "Creates the scope map `<name>-scope-map` with these permissions.",
                    )),
            )
            .required("repositories")
            .property("scopeMap", absent())
            .property("expirationInDays", days())
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new()
            .item(with_map)
            .item(with_repositories)
            .description(Some(
                "A token with an existing scope map, or with the permissions of a new one.",
            ))
            .into()
    }
}

impl ToSchema for CreateToken {}

/// A new token password, shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPassword {
    /// `password1` or `password2`.
    pub name: String,
    /// The password.
    pub value: String,
    /// Unix seconds after which it no longer works.
    #[serde(rename = "expiresAt")]
    pub expires_at: Option<u64>,
}

/// A token with freshly generated passwords.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenWithPasswords {
    /// The token.
    #[serde(flatten)]
    pub token: TokenView,
    /// The new passwords (shown only here).
    pub new_passwords: Vec<TokenPassword>,
}

/// `PATCH /api/v1/tokens/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateToken {
    /// `enabled` or `disabled`.
    #[schema(pattern = "^(enabled|disabled)$")]
    pub status: Option<String>,
    /// Another scope map.
    pub scope_map: Option<String>,
}

/// `POST /api/v1/tokens/{name}/credentials/generate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneratePassword {
    /// `password1` or `password2`.
    #[schema(pattern = r"^password[12]$")]
    pub password_name: String,
    /// Validity in days (no expiry when absent).
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expiration_in_days: Option<u64>,
}

async fn find(state: &ApiState, name: &str) -> MgmtResult<TokenInfo> {
    state
        .auth
        .repo
        .get_token(name)
        .await?
        .ok_or_else(|| MgmtError::not_found(format!("no token named {name:?}")))
}

async fn set_password(
    state: &ApiState,
    name: &str,
    which: u8,
    expires_at: Option<u64>,
) -> MgmtResult<TokenPassword> {
    let value = berth_auth::password::generate_secret();
    let phc = hash_secret(state, &value).await?;
    state
        .auth
        .repo
        .set_token_password(name, which, &phc, expires_at)
        .await?;
    Ok(TokenPassword {
        name: format!("password{which}"),
        value,
        expires_at,
    })
}

/// The scope map rules for `repositories`.
fn rules_for(repositories: &[RepositoryActions]) -> Vec<String> {
    repositories
        .iter()
        .flat_map(|r| {
            r.actions
                .iter()
                .map(move |a| format!("repositories/{}/{a}", r.repository))
        })
        .collect()
}

/// Create a token with both passwords.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = TokenWithPasswords), (status = 400, body = ErrorBody),
        (status = 404, description = "no such scope map", body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateToken>,
) -> MgmtResult<(StatusCode, Json<TokenWithPasswords>)> {
    caller.require(ManagementAction::Write)?;
    if req
        .name
        .eq_ignore_ascii_case(&state.auth.settings.registry_name)
    {
        // A well-formed name, taken: it is the admin account's username.
        return Err(MgmtError::conflict(format!(
            "{:?} is the registry's name (the admin account's username)",
            req.name
        ))
        .field("name"));
    }
    berth_auth::scope_map::validate_token_name(&req.name, &state.auth.settings.registry_name)
        .map_err(|e| MgmtError::invalid("name", e.to_string()))?;
    let expires_at = expiry(&state, req.expiration_in_days, "expirationInDays")?;
    if state.auth.repo.get_token(&req.name).await?.is_some() {
        return Err(
            MgmtError::conflict(format!("a token named {:?} exists", req.name)).field("name"),
        );
    }
    let (scope_map, created_map) = match (req.scope_map, req.repositories) {
        (Some(m), None) => (m, false),
        (None, Some(repos)) => {
            if repos.len() > MAX_REPOSITORY_ENTRIES
                || repos.iter().any(|r| r.actions.len() > MAX_ACTIONS)
            {
                return Err(MgmtError::invalid(
                    "repositories",
                    format!(
                        "at most {MAX_REPOSITORY_ENTRIES} repositories with at most {MAX_ACTIONS} actions each"
                    ),
                ));
            }
            // Every pattern counts, also one given no actions.
            for r in &repos {
                berth_auth::scope_map::RepositoryPattern::parse(&r.repository)
                    .map_err(|e| MgmtError::invalid("repositories", e.to_string()))?;
            }
            let map = format!("{}-scope-map", req.name);
            let rules = rules_for(&repos);
            check_rules(&map, &rules).map_err(|e| e.field("repositories"))?;
            state
                .auth
                .repo
                .create_scope_map(&map, &format!("created for token {}", req.name), &rules)
                .await?;
            (map, true)
        }
        _ => {
            return Err(MgmtError::invalid(
                "scopeMap",
                "give exactly one of scopeMap and repositories",
            ))
        }
    };
    if let Err(e) = state.auth.repo.create_token(&req.name, &scope_map).await {
        if created_map {
            // Best effort: do not leave the map made for a token that failed.
            let _ = state.auth.repo.delete_scope_map(&scope_map).await;
        }
        let field = match e {
            berth_store::StoreError::NotFound(_) => "scopeMap",
            _ => "name",
        };
        return Err(MgmtError::from(e).field(field));
    }
    let p1 = set_password(&state, &req.name, 1, expires_at).await?;
    let p2 = set_password(&state, &req.name, 2, expires_at).await?;
    state.auth.policy_changed().await;
    let token = find(&state, &req.name).await?.into();
    Ok((
        StatusCode::CREATED,
        Json(TokenWithPasswords {
            token,
            new_passwords: vec![p1, p2],
        }),
    ))
}

/// List tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenView>)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> MgmtResult<Json<Vec<TokenView>>> {
    caller.require(ManagementAction::Read)?;
    let all = state.auth.repo.list_tokens().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Show a token.
#[utoipa::path(get, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "token name")),
    responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<Json<TokenView>> {
    caller.require(ManagementAction::Read)?;
    Ok(Json(find(&state, &name).await?.into()))
}

/// Enable/disable a token or change its scope map.
#[utoipa::path(patch, path = "/api/v1/tokens/{name}", tag = "tokens", request_body = UpdateToken,
    params(("name" = String, Path, description = "token name")),
    responses((status = 200, body = TokenView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateToken>,
) -> MgmtResult<Json<TokenView>> {
    caller.require(ManagementAction::Write)?;
    find(&state, &name).await?;
    let enabled = match req.status.as_deref() {
        None => None,
        Some("enabled") => Some(true),
        Some("disabled") => Some(false),
        Some(_) => {
            return Err(MgmtError::invalid(
                "status",
                "status must be \"enabled\" or \"disabled\"",
            ))
        }
    };
    if let Some(map) = &req.scope_map {
        state
            .auth
            .repo
            .set_token_scope_map(&name, map)
            .await
            .map_err(|e| MgmtError::from(e).field("scopeMap"))?;
    }
    if let Some(enabled) = enabled {
        state.auth.repo.set_token_enabled(&name, enabled).await?;
    }
    state.auth.policy_changed().await;
    Ok(Json(find(&state, &name).await?.into()))
}

/// Regenerate one token password.
#[utoipa::path(post, path = "/api/v1/tokens/{name}/credentials/generate", tag = "tokens",
    request_body = GeneratePassword, params(("name" = String, Path, description = "token name")),
    responses((status = 200, body = TokenWithPasswords), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn generate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<GeneratePassword>,
) -> MgmtResult<Json<TokenWithPasswords>> {
    caller.require(ManagementAction::Write)?;
    find(&state, &name).await?;
    let which = match req.password_name.as_str() {
        "password1" => 1,
        "password2" => 2,
        _ => {
            return Err(MgmtError::invalid(
                "passwordName",
                "passwordName must be \"password1\" or \"password2\"",
            ))
        }
    };
    let expires_at = expiry(&state, req.expiration_in_days, "expirationInDays")?;
    let p = set_password(&state, &name, which, expires_at).await?;
    state.auth.policy_changed().await;
    let token = find(&state, &name).await?.into();
    Ok(Json(TokenWithPasswords {
        token,
        new_passwords: vec![p],
    }))
}

/// Delete a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "token name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::Write)?;
    if !state.auth.repo.delete_token(&name).await? {
        return Err(MgmtError::not_found(format!("no token named {name:?}")));
    }
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
