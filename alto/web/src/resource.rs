//! Admission and answers of one ALTO resource, shared by `alto-server` and a PID Head alike
//! (RFC 7285 §8.3): method, `Accept` and `Content-Type` checks, the body limit, responses in
//! the ALTO error format of §8.5, and conditional GET (RFC 7232 §3.2).

use alto_model::{media, AltoError};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use std::time::Duration;

/// A response as the servers send it.
pub type HttpResponse = Response<Full<Bytes>>;

/// Why a request was turned away before its resource saw it.
#[derive(Debug)]
pub enum Reject {
    /// An ALTO error with its HTTP status, and an `Allow` value for 405.
    Alto(StatusCode, AltoError, Option<&'static str>),
    /// A plain-text answer (406: the client accepts no type the resource has).
    Text(StatusCode, String),
}

impl Reject {
    /// The response, and the ALTO error code it carries, for counting.
    pub fn into_response(self) -> (HttpResponse, Option<alto_model::ErrorCode>) {
        match self {
            Reject::Alto(status, e, allow) => {
                let mut r = alto_error(status, &e);
                if let Some(allow) = allow {
                    r.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static(allow));
                }
                (r, Some(e.code()))
            }
            Reject::Text(status, text) => (simple(status, "text/plain", text), None),
        }
    }
}

/// How much of a request body is read, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit {
    /// Largest body; a larger one is 413.
    pub max_bytes: usize,
    /// Time the whole body has to arrive once the head is in; a body trickled slower is 408.
    pub timeout: Duration,
}

impl Default for BodyLimit {
    fn default() -> Self {
        BodyLimit {
            max_bytes: 64 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Checks a request for a resource at `path` answering `media_type`, taking POST bodies of
/// type `accepts` (`None`: a GET resource), and reads the body within `limit`.
pub async fn admit<B>(
    parts: &http::request::Parts,
    body: B,
    path: &str,
    media_type: &str,
    accepts: Option<&str>,
    limit: BodyLimit,
) -> Result<Bytes, Reject>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (method, allow) = match accepts {
        None => (Method::GET, "GET"),
        Some(_) => (Method::POST, "POST"),
    };
    if parts.method != method {
        let e = AltoError::syntax(format!("{path} takes {allow}, not {}", parts.method));
        return Err(Reject::Alto(StatusCode::METHOD_NOT_ALLOWED, e, Some(allow)));
    }
    if let Some(accept) = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    {
        if !media::accepts(accept, media_type) {
            let text =
                format!("{path} answers with {media_type}; the Accept header does not admit it\n");
            return Err(Reject::Text(StatusCode::NOT_ACCEPTABLE, text));
        }
    }
    let Some(accepts) = accepts else {
        return Ok(Bytes::new());
    };
    let ctype = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(media::essence);
    if ctype.as_deref() != Some(accepts) {
        let got = ctype.unwrap_or_else(|| "none".into());
        let e = AltoError::syntax(format!("the body of {path} must be {accepts}, not {got}"));
        return Err(Reject::Alto(StatusCode::UNSUPPORTED_MEDIA_TYPE, e, None));
    }
    let max = limit.max_bytes;
    let too_large = || {
        let e = AltoError::syntax(format!("the request body exceeds the limit of {max} bytes"));
        Reject::Alto(StatusCode::PAYLOAD_TOO_LARGE, e, None)
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(limit.timeout, Limited::new(body, max).collect());
    let Ok(read) = read.await else {
        let e = AltoError::syntax(format!(
            "the request body did not arrive within {:?}",
            limit.timeout
        ));
        return Err(Reject::Alto(StatusCode::REQUEST_TIMEOUT, e, None));
    };
    match read {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => {
            tracing::debug!("request body failed: {e}");
            let e = AltoError::syntax("the request body could not be read");
            Err(Reject::Alto(StatusCode::BAD_REQUEST, e, None))
        }
    }
}

/// An `application/alto-error+json` response.
pub fn alto_error(status: StatusCode, e: &AltoError) -> HttpResponse {
    simple(status, media::ERROR, e.to_json())
}

/// A response with a body and its type.
pub fn simple(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A GET answer with its entity tag: 304 with no body when `If-None-Match` names the tag
/// (weak comparison, RFC 7232 §3.2), else 200 with `body()`; `cache` is `Cache-Control`.
pub fn conditional(
    headers: &http::HeaderMap,
    etag: HeaderValue,
    cache: HeaderValue,
    media_type: &'static str,
    body: impl FnOnce() -> Bytes,
) -> HttpResponse {
    let want = etag.to_str().unwrap_or_default();
    let matched = headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.trim_start_matches("W/") == want)
        })
    });
    let mut r = if matched {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        simple(StatusCode::OK, media_type, body())
    };
    r.headers_mut().insert(header::ETAG, etag);
    r.headers_mut().insert(header::CACHE_CONTROL, cache);
    r
}

/// A successful POST answer: the resource's media type, not to be stored by caches.
pub fn post_answer(media_type: &'static str, body: Vec<u8>) -> HttpResponse {
    let mut r = simple(StatusCode::OK, media_type, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
