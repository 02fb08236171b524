//! Turning failures into the distribution spec's error envelope.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{ErrorCode, OciError};
use berth_store::StoreError;

/// A failed request: the spec error to send, with an optional status
/// override and extra headers (e.g. `Range` on 416).
#[derive(Debug)]
pub struct ApiError {
    /// The error sent to the client.
    pub error: OciError,
    /// Status to use instead of the code's default.
    pub status: Option<StatusCode>,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    /// An error with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        OciError::new(code).into()
    }

    /// An error with a message.
    pub fn msg(code: ErrorCode, message: impl Into<String>) -> Self {
        OciError::with_message(code, message).into()
    }

    /// Override the HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Attach structured detail.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.error.detail = Some(detail);
        self
    }

    /// Add a response header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<OciError> for ApiError {
    fn from(error: OciError) -> Self {
        ApiError {
            error,
            status: None,
            headers: Vec::new(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_storage_full() {
            tracing::error!(error = %format!("{e:#}"), "storage full");
            return crate::storage::full_error();
        }
        match e {
            StoreError::Oci(o) => o.into(),
            StoreError::UploadRange { size } => ApiError::msg(
                ErrorCode::RangeInvalid,
                format!("chunk must start at offset {size}, the bytes received so far"),
            )
            .with_header("Range", crate::v2::range_header(size)),
            StoreError::Body(err) => ApiError::msg(
                ErrorCode::BlobUploadInvalid,
                format!("request body could not be read: {err}"),
            ),
            StoreError::Conflict(m) => {
                ApiError::msg(ErrorCode::Unsupported, m).with_status(StatusCode::CONFLICT)
            }
            StoreError::NotFound(m) => {
                ApiError::msg(ErrorCode::Unsupported, m).with_status(StatusCode::NOT_FOUND)
            }
            StoreError::Invalid(m) => {
                ApiError::msg(ErrorCode::Unsupported, m).with_status(StatusCode::BAD_REQUEST)
            }
            StoreError::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "storage failure");
                ApiError::msg(
                    ErrorCode::Internal,
                    "internal storage error; see server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.error.code.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let body = self.error.to_body().to_string();
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}

/// Result type of handlers.
pub type ApiResult<T = Response> = Result<T, ApiError>;
