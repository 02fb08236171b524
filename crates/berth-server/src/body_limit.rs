//! Request bodies over the limit get `413` in their protocol's error
//! format, and the client reads it.
//!
//! Every request except the ones that stream into the store (blob uploads;
//! manifest PUTs, which have their own 4 MiB limit) is read here first, up
//! to [`MAX_BODY`] bytes, before any handler runs. A bigger body (declared
//! by `Content-Length` or found while reading) is answered with `413`:
//!
//! * `/v2/…`: the OCI envelope, `SIZE_INVALID`;
//! * `/oauth2/…`, `/directory/…`: OAuth's `{"error":"invalid_request",
//!   "error_description"}` (plus the OCI `errors` array the Docker token
//!   endpoints use for their other errors);
//! * `/api/…`: the management API's envelope, code `TOO_LARGE`;
//! * anything else: the OCI envelope.
//!
//! The rest of the body is read and discarded first
//! ([`crate::body::drain`], bounded), because closing a connection while
//! the client is still sending resets it and the client never sees the
//! answer.

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_core::{ErrorCode, OciError};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

/// Largest request body outside blob uploads and manifests: 1 MiB.
pub const MAX_BODY: usize = 1024 * 1024;

/// Which error format a path speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Streamed to the store: not limited here.
    Streamed,
    Oci,
    OAuth,
    Api,
}

fn protocol(method: &Method, path: &str) -> Protocol {
    if path.starts_with("/v2") {
        let upload = path.contains("/blobs/uploads");
        let manifest_put = *method == Method::PUT && path.contains("/manifests/");
        if upload || manifest_put {
            Protocol::Streamed
        } else {
            Protocol::Oci
        }
    } else if path.starts_with("/oauth2/") || path.starts_with("/directory/") {
        Protocol::OAuth
    } else if path.starts_with("/api/") {
        Protocol::Api
    } else {
        Protocol::Oci
    }
}

/// The middleware: read small bodies whole, refuse big ones with 413.
pub async fn body_limit(req: Request, next: Next) -> Response {
    let proto = protocol(req.method(), req.uri().path());
    if proto == Protocol::Streamed || req.body().is_end_stream() {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, body) = req.into_parts();
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        crate::body::drain(body).await;
        return too_large(proto);
    }
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk: Bytes = match chunk {
            Ok(c) => c,
            // The client went away or sent a broken body: nothing to answer.
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("request body: {e}\n")).into_response()
            }
        };
        if buf.len() + chunk.len() > MAX_BODY {
            crate::body::drain(Body::from_stream(stream)).await;
            return too_large(proto);
        }
        buf.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(buf.freeze())))
        .await
}

fn too_large(proto: Protocol) -> Response {
    let message = format!("the request body is larger than the {MAX_BODY}-byte limit");
    let oci = OciError::with_message(ErrorCode::TooLarge, message.clone());
    let body = match proto {
        Protocol::OAuth => {
            let mut v = oci.to_body();
            v["error"] = "invalid_request".into();
            v["error_description"] = message.into();
            v
        }
        Protocol::Api => serde_json::json!({
            "errors": [{ "code": "TOO_LARGE", "message": message }]
        }),
        Protocol::Oci | Protocol::Streamed => oci.to_body(),
    };
    let mut resp = (StatusCode::PAYLOAD_TOO_LARGE, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_by_path() {
        let p = |m: Method, path: &str| protocol(&m, path);
        assert_eq!(
            p(Method::PATCH, "/v2/a/blobs/uploads/x"),
            Protocol::Streamed
        );
        assert_eq!(p(Method::PUT, "/v2/a/manifests/1"), Protocol::Streamed);
        assert_eq!(p(Method::GET, "/v2/a/manifests/1"), Protocol::Oci);
        assert_eq!(p(Method::POST, "/oauth2/token"), Protocol::OAuth);
        assert_eq!(p(Method::POST, "/directory/token"), Protocol::OAuth);
        assert_eq!(p(Method::POST, "/api/v1/users"), Protocol::Api);
        assert_eq!(p(Method::POST, "/healthz"), Protocol::Oci);
    }
}
