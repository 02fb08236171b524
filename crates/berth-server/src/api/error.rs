//! The management API's error shape:
//! `{"errors":[{"code":"INVALID","message":"...","field":"name"}]}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_store::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// One error of a refused management request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorItem {
    /// `INVALID`, `NOT_FOUND`, `METHOD_NOT_ALLOWED`, `CONFLICT`, `UNAUTHORIZED`,
    /// `DENIED`, `TOO_LARGE`, `TOOMANYREQUESTS`, `STORAGE_FULL` or `INTERNAL`.
    pub code: String,
    /// What went wrong, for a human.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The body of every management API error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The errors (usually one).
    pub errors: Vec<ErrorItem>,
}

/// A refused management request.
#[derive(Debug)]
pub struct MgmtError {
    /// HTTP status.
    pub status: StatusCode,
    /// The error.
    pub item: ErrorItem,
    /// Extra headers (`WWW-Authenticate` on 401).
    pub headers: Vec<(&'static str, String)>,
}

impl MgmtError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        MgmtError {
            status,
            item: ErrorItem {
                code: code.to_string(),
                message: message.into(),
                field: None,
            },
            headers: Vec::new(),
        }
    }

    /// 400 `INVALID` naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "INVALID", message);
        e.item.field = Some(field.to_string());
        e
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 405 `METHOD_NOT_ALLOWED` (the caller adds `Allow`).
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "method not allowed on this endpoint",
        )
    }

    /// 409 `CONFLICT`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    /// 401 `UNAUTHORIZED` with a challenge pointing at the directory.
    pub fn unauthorized(message: impl Into<String>, realm: &str) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        e.headers
            .push(("www-authenticate", format!("Bearer realm=\"{realm}\"")));
        e
    }

    /// 403 `DENIED`.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "DENIED", message)
    }

    /// 500 `INTERNAL`; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "management API failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error; see the server log",
        )
    }

    /// Name the field at fault.
    pub fn field(mut self, field: &str) -> Self {
        self.item.field = Some(field.to_string());
        self
    }
}

impl From<StoreError> for MgmtError {
    fn from(e: StoreError) -> Self {
        if e.is_storage_full() {
            tracing::error!(error = %format!("{e:#}"), "storage full");
            crate::storage::note_full();
            return Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "STORAGE_FULL",
                crate::storage::FULL_MESSAGE,
            );
        }
        match e {
            StoreError::Invalid(m) => Self::new(StatusCode::BAD_REQUEST, "INVALID", m),
            StoreError::NotFound(m) => Self::not_found(m),
            StoreError::Conflict(m) => Self::conflict(m),
            StoreError::Oci(o) => Self::new(
                StatusCode::from_u16(o.code.status()).unwrap_or(StatusCode::BAD_REQUEST),
                "INVALID",
                o.to_string(),
            ),
            other => Self::internal(format!("{other:#}")),
        }
    }
}

impl IntoResponse for MgmtError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            errors: vec![self.item],
        };
        let mut resp = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

/// Handler result.
pub type MgmtResult<T> = Result<T, MgmtError>;

/// A JSON request body whose rejection (malformed JSON, wrong content type,
/// a missing or mistyped field) is a 400 in the management error shape.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = MgmtError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Parsed as a JSON value first: serde would read a struct from an
        // array too (`[null, null]`), which the document does not allow.
        let value =
            match <Json<serde_json::Value> as FromRequest<S>>::from_request(req, state).await {
                Ok(Json(v)) => v,
                Err(rejection) => return Err(rejection_error(&rejection)),
            };
        from_json_object(value).map(JsonBody)
    }
}

/// A request body's value as `T`; anything but a JSON object is a 400.
pub fn from_json_object<T: DeserializeOwned>(value: serde_json::Value) -> MgmtResult<T> {
    if !value.is_object() {
        return Err(MgmtError::invalid(
            "body",
            "request body: expected a JSON object",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| MgmtError::invalid("body", format!("request body: {e}")))
}

/// An optional body: a request without `Content-Type`, or with the body
/// `null`, has none.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = MgmtError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if !req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return Ok(None);
        }
        // JSON `null` is no body too (what clients send for "nothing").
        let value =
            match <Json<serde_json::Value> as FromRequest<S>>::from_request(req, state).await {
                Ok(Json(serde_json::Value::Null)) => return Ok(None),
                Ok(Json(v)) => v,
                Err(rejection) => return Err(rejection_error(&rejection)),
            };
        from_json_object(value).map(|v| Some(JsonBody(v)))
    }
}

fn rejection_error(r: &JsonRejection) -> MgmtError {
    let mut e = MgmtError::new(
        StatusCode::BAD_REQUEST,
        "INVALID",
        format!("request body: {}", r.body_text()),
    );
    e.item.field = Some("body".into());
    e
}
