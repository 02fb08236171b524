//! Sending a request and reading a registry's answer.

use std::error::Error as _;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::report::Finding;

/// A registry's answer, read completely.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The body as JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The message the registry gave: `errors[0].message` (OCI envelope),
    /// `error_description` (OAuth2), else the start of the body.
    pub fn message(&self) -> String {
        let v = self.json();
        let from_json = v.as_ref().and_then(|v| {
            v["errors"][0]["message"]
                .as_str()
                .or_else(|| v["error_description"].as_str())
                .map(str::to_string)
        });
        from_json.unwrap_or_else(|| {
            let t = self.body.trim();
            let cut = t.char_indices().nth(200).map_or(t.len(), |(i, _)| i);
            if t.is_empty() {
                "(empty body)".to_string()
            } else {
                t[..cut].to_string()
            }
        })
    }

    /// `HTTP <status>: <message>`.
    pub fn describe(&self) -> String {
        format!("HTTP {}: {}", self.status, self.message())
    }

    /// The 429 finding, when the registry throttled this request.
    pub fn throttled(&self, check: &str) -> Option<Finding> {
        (self.status == 429).then(|| {
            let wait = self
                .header("retry-after")
                .map(|s| format!(" (Retry-After: {s} s)"))
                .unwrap_or_default();
            Finding::problem(
                check,
                "CONNECTIVITY_TOOMANYREQUESTS_ERROR",
                format!("{}{wait}", self.describe()),
            )
        })
    }
}

/// A transport error with its causes ("error sending request: … : connection refused").
pub fn describe_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Send and read the whole answer.
pub async fn send(req: reqwest::RequestBuilder) -> Result<Answer, String> {
    let resp = req.send().await.map_err(|e| describe_error(&e))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.map_err(|e| describe_error(&e))?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}
