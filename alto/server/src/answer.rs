//! Answers shared by every resource of the server: JSON bodies, entity tags and the one
//! answer for a fault of the server itself (RFC 7285 §8.5). A request path never panics: what
//! cannot be made becomes a [`Fault`], logged here and never explained to the client.

use alto_model::AltoError;
use alto_web::{self as web, HttpResponse};
use http::header::HeaderValue;
use http::StatusCode;
use std::fmt::Display;

/// A fault of the server, not of the request; its cause is for the log only.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Fault(String);

impl Fault {
    /// A fault with its cause.
    pub(crate) fn new(cause: impl Display) -> Self {
        Fault(cause.to_string())
    }

    /// A 500 in the ALTO error format. RFC 7285 §8.5.2 has codes for client errors only;
    /// the status says the fault is the server's, and `E_SYNTAX` is the one code whose
    /// `syntax-error` member can ask the client to try again.
    pub(crate) fn into_response(self) -> HttpResponse {
        tracing::error!("answering 500: {}", self.0);
        let e = AltoError::syntax("the server failed to answer this request; try again later");
        web::alto_error(StatusCode::INTERNAL_SERVER_ERROR, &e)
    }
}

/// The 500 answer for `cause`.
pub(crate) fn server_fault(cause: impl Display) -> HttpResponse {
    Fault::new(cause).into_response()
}

/// `v` as a JSON body.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, Fault> {
    serde_json::to_vec(v).map_err(Fault::new)
}

/// The strong entity tag `"tag"` (tags here are hex digests).
pub(crate) fn etag(tag: &str) -> Result<HeaderValue, Fault> {
    HeaderValue::from_str(&format!("\"{tag}\"")).map_err(Fault::new)
}
