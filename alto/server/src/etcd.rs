//! A small client of etcd v3 (3.4 and later) over its JSON gateway (`/v3/kv/range`,
//! `/v3/kv/txn`, `/v3/lease/*`, `/v3/watch`; the gRPC services of etcd's `rpc.proto` mapped
//! to HTTP/JSON: keys and values in base64, 64-bit integers as strings, fields at their zero
//! value left out). The gateway speaks through the workspace's one HTTP client, so etcd needs
//! no gRPC stack and no `protoc`, and `https://` endpoints are verified like every server.
//!
//! Only what the election store needs: linearizable ranges, transactions comparing
//! revisions, leases (grant, keep-alive, revoke) and a watch over a prefix. Every request
//! goes to the current endpoint and, when that one does not answer or says it is
//! unavailable, to the next, each within the request timeout.

use alto_web::client::{http_client, ClientOptions, HttpClient};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Most bytes read of one answer, and of one watch message.
const MAX_ANSWER: usize = 16 << 20;

/// Why an etcd request failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered in time.
    #[error("no etcd endpoint answered: {0}")]
    Unreachable(String),
    /// etcd answered with an error (its gRPC code and message).
    #[error("etcd refused the request (code {code}): {message}")]
    Refused {
        /// The gRPC status code.
        code: i64,
        /// etcd's message.
        message: String,
    },
    /// etcd's answer was not what its API says.
    #[error("etcd's answer could not be read: {0}")]
    Malformed(String),
}

/// A key and its value with their revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty in a delete event).
    pub value: Vec<u8>,
    /// The revision that created the key (0 in a delete event).
    pub create_revision: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// The lease it is attached to (0: none).
    pub lease: i64,
}

/// A comparison of a transaction (always `EQUAL`).
#[derive(Clone, Debug)]
pub enum Compare {
    /// The key's create revision equals this (0: the key does not exist).
    Created(Vec<u8>, i64),
    /// The key's mod revision equals this (0: the key does not exist).
    Modified(Vec<u8>, i64),
}

/// An operation of a transaction.
#[derive(Clone, Debug)]
pub enum Op {
    /// Puts the value, attached to the lease (0: none).
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The lease.
        lease: i64,
    },
    /// Deletes the key.
    Delete(Vec<u8>),
    /// Reads the key.
    Get(Vec<u8>),
}

/// The outcome of a transaction.
#[derive(Clone, Debug)]
pub struct TxnResult {
    /// Whether every comparison held (the success branch ran).
    pub succeeded: bool,
    /// The store's revision after the transaction (that of its writes when it wrote).
    pub revision: i64,
    /// What each `Get` of the branch that ran read, in order.
    pub reads: Vec<Vec<Kv>>,
}

/// A change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key was put.
    Put(Kv),
    /// The key was deleted (or its lease ran out).
    Delete(Kv),
}

/// The end of a range covering every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A 64-bit integer of the gateway's JSON: a string, a number, or absent (zero).
fn int(v: &Value, name: &str) -> Result<i64, EtcdError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| EtcdError::Malformed(format!("{name} is not an integer: {s}"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| EtcdError::Malformed(format!("{name} is not an integer: {n}"))),
        Some(other) => Err(EtcdError::Malformed(format!("{name} is {other}"))),
    }
}

fn bytes_of(v: &Value, name: &str) -> Result<Vec<u8>, EtcdError> {
    match v.get(name).and_then(Value::as_str) {
        None => Ok(Vec::new()),
        Some(s) => B64
            .decode(s)
            .map_err(|e| EtcdError::Malformed(format!("{name} is not base64: {e}"))),
    }
}

fn kv(v: &Value) -> Result<Kv, EtcdError> {
    Ok(Kv {
        key: bytes_of(v, "key")?,
        value: bytes_of(v, "value")?,
        create_revision: int(v, "create_revision")?,
        mod_revision: int(v, "mod_revision")?,
        lease: int(v, "lease")?,
    })
}

fn kvs(v: &Value) -> Result<Vec<Kv>, EtcdError> {
    match v.get("kvs") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(kv).collect(),
        Some(other) => Err(EtcdError::Malformed(format!("kvs is {other}"))),
    }
}

fn revision(v: &Value) -> Result<i64, EtcdError> {
    int(v.get("header").unwrap_or(&Value::Null), "revision")
}

/// The gateway's error object, if the answer is one.
fn refusal(v: &Value) -> Option<EtcdError> {
    let message = v.get("error").or_else(|| v.get("message"))?.as_str()?;
    Some(EtcdError::Refused {
        code: v.get("code").and_then(Value::as_i64).unwrap_or(2),
        message: message.to_owned(),
    })
}

/// gRPC's UNAVAILABLE (no leader, the member is stopping, …): worth another endpoint.
const UNAVAILABLE: i64 = 14;

fn op_json(op: &Op) -> Value {
    match op {
        Op::Put { key, value, lease } => json!({"requestPut": {
            "key": b64(key), "value": b64(value), "lease": lease.to_string()}}),
        Op::Delete(key) => json!({"requestDeleteRange": {"key": b64(key)}}),
        Op::Get(key) => json!({"requestRange": {"key": b64(key)}}),
    }
}

fn compare_json(c: &Compare) -> Value {
    match c {
        Compare::Created(key, rev) => json!({"target": "CREATE", "result": "EQUAL",
            "key": b64(key), "create_revision": rev.to_string()}),
        Compare::Modified(key, rev) => json!({"target": "MOD", "result": "EQUAL",
            "key": b64(key), "mod_revision": rev.to_string()}),
    }
}

/// A client of an etcd cluster.
pub struct Etcd {
    http: HttpClient,
    endpoints: Vec<String>,
    current: AtomicUsize,
    timeout: Duration,
}

impl Etcd {
    /// A client of the cluster at `endpoints` (`http://host:port` or `https://…`, verified
    /// with `tls` or the process's default), each request allowed `timeout` per endpoint.
    pub fn new(
        endpoints: Vec<String>,
        timeout: Duration,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Self {
        let endpoints = endpoints
            .into_iter()
            .map(|e| e.trim_end_matches('/').to_owned())
            .collect();
        Etcd {
            http: http_client(ClientOptions {
                connect_timeout: Some(timeout),
                tls,
                ..ClientOptions::default()
            }),
            endpoints,
            current: AtomicUsize::new(0),
            timeout,
        }
    }

    /// The endpoints, the current one first.
    fn rotation(&self) -> impl Iterator<Item = (usize, &str)> {
        let n = self.endpoints.len();
        let first = self.current.load(Relaxed);
        (0..n).map(move |k| {
            let i = (first + k) % n;
            (i, self.endpoints[i].as_str())
        })
    }

    /// Posts `body` to `path` of one endpoint and reads the whole JSON answer.
    async fn post_to(&self, endpoint: &str, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let req = http::Request::post(format!("{endpoint}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| EtcdError::Unreachable(format!("{endpoint}: {e}")))?;
        let read = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| EtcdError::Unreachable(format!("{endpoint}: {e}")))?;
            let body = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| EtcdError::Unreachable(format!("{endpoint}: {e}")))?
                .to_bytes();
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| EtcdError::Malformed(format!("{endpoint}{path}: {e}")))
        };
        let v = tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| EtcdError::Unreachable(format!("{endpoint}: no answer in time")))??;
        match refusal(&v) {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }

    /// Posts to the current endpoint, moving on to the next while they do not answer.
    async fn post(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let mut last = EtcdError::Unreachable("no endpoints".into());
        for (i, endpoint) in self.rotation() {
            match self.post_to(endpoint, path, &body).await {
                Err(e @ EtcdError::Unreachable(_))
                | Err(
                    e @ EtcdError::Refused {
                        code: UNAVAILABLE, ..
                    },
                ) => {
                    tracing::debug!("etcd: {e}");
                    last = e;
                }
                other => {
                    self.current.store(i, Relaxed);
                    return other;
                }
            }
        }
        Err(last)
    }

    /// Every key from `key` up to `range_end` (just `key` without one), and the revision
    /// read at.
    pub async fn range(
        &self,
        key: &[u8],
        range_end: Option<&[u8]>,
    ) -> Result<(i64, Vec<Kv>), EtcdError> {
        let mut body = json!({"key": b64(key)});
        if let Some(end) = range_end {
            body["range_end"] = b64(end).into();
        }
        let v = self.post("/v3/kv/range", body).await?;
        Ok((revision(&v)?, kvs(&v)?))
    }

    /// A transaction: if every comparison holds, `success`, else `failure`.
    pub async fn txn(
        &self,
        compare: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<TxnResult, EtcdError> {
        let body = json!({
            "compare": compare.iter().map(compare_json).collect::<Vec<_>>(),
            "success": success.iter().map(op_json).collect::<Vec<_>>(),
            "failure": failure.iter().map(op_json).collect::<Vec<_>>(),
        });
        let v = self.post("/v3/kv/txn", body).await?;
        let succeeded = v.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
        let mut reads = Vec::new();
        if let Some(Value::Array(rs)) = v.get("responses") {
            for r in rs {
                if let Some(range) = r.get("response_range") {
                    reads.push(kvs(range)?);
                }
            }
        }
        Ok(TxnResult {
            succeeded,
            revision: revision(&v)?,
            reads,
        })
    }

    /// A new lease of `ttl_secs`; its ID.
    pub async fn grant(&self, ttl_secs: u64) -> Result<i64, EtcdError> {
        let v = self
            .post("/v3/lease/grant", json!({"TTL": ttl_secs.to_string()}))
            .await?;
        match int(&v, "ID")? {
            0 => Err(EtcdError::Malformed("lease grant without an ID".into())),
            id => Ok(id),
        }
    }

    /// Keeps lease `id` alive once; its TTL again, or 0 when the lease is gone.
    pub async fn keep_alive(&self, id: i64) -> Result<i64, EtcdError> {
        let v = self
            .post("/v3/lease/keepalive", json!({"ID": id.to_string()}))
            .await?;
        int(v.get("result").unwrap_or(&Value::Null), "TTL")
    }

    /// Ends lease `id` and deletes its keys (a lease already gone is no error).
    pub async fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        match self
            .post("/v3/lease/revoke", json!({"ID": id.to_string()}))
            .await
        {
            Err(EtcdError::Refused { message, .. }) if message.contains("not found") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Whether the member a watch streams from still serves: one linearizable read of `key`
    /// (which needs the member to reach its cluster's leader). A member stopped, or cut off
    /// from its peers, keeps the watch's connection open and says nothing; after a failed
    /// probe the client moves on to the next endpoint.
    pub async fn probe(&self, watch: &Watch, key: &[u8]) -> Result<(), EtcdError> {
        let i = watch.endpoint;
        let body = json!({"key": b64(key), "limit": 1, "keys_only": true});
        match self
            .post_to(&self.endpoints[i], "/v3/kv/range", &body)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let next = (i + 1) % self.endpoints.len();
                let _ = self.current.compare_exchange(i, next, Relaxed, Relaxed);
                Err(e)
            }
        }
    }

    /// Watches every key under `prefix` from revision `start` on.
    pub async fn watch(&self, prefix: &[u8], start: i64) -> Result<Watch, EtcdError> {
        let body = json!({"create_request": {
            "key": b64(prefix),
            "range_end": b64(&prefix_end(prefix)),
            "start_revision": start.to_string(),
        }});
        let mut last = EtcdError::Unreachable("no endpoints".into());
        for (i, endpoint) in self.rotation() {
            let req = http::Request::post(format!("{endpoint}/v3/watch"))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .map_err(|e| EtcdError::Unreachable(format!("{endpoint}: {e}")))?;
            match tokio::time::timeout(self.timeout, self.http.request(req)).await {
                Ok(Ok(resp)) if resp.status().is_success() => {
                    self.current.store(i, Relaxed);
                    return Ok(Watch {
                        body: resp.into_body(),
                        buf: BytesMut::new(),
                        endpoint: i,
                    });
                }
                Ok(Ok(resp)) => {
                    last = EtcdError::Unreachable(format!("{endpoint}: HTTP {}", resp.status()))
                }
                Ok(Err(e)) => last = EtcdError::Unreachable(format!("{endpoint}: {e}")),
                Err(_) => last = EtcdError::Unreachable(format!("{endpoint}: no answer in time")),
            }
        }
        Err(last)
    }
}

/// A watch's stream of changes.
pub struct Watch {
    body: hyper::body::Incoming,
    buf: BytesMut,
    /// The index of the endpoint it streams from.
    endpoint: usize,
}

/// What a watch said.
#[derive(Debug)]
pub enum Watched {
    /// Changes, and the revision they bring the store to.
    Events(i64, Vec<Event>),
    /// The revision asked for is compacted away: read everything again.
    Compacted,
}

impl Watch {
    /// The next message with changes; `Ok(None)` when the stream ended.
    pub async fn next(&mut self) -> Result<Option<Watched>, EtcdError> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(at + 1);
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_slice(line)
                    .map_err(|e| EtcdError::Malformed(format!("watch: {e}")))?;
                if let Some(e) = refusal(&v) {
                    return Err(e);
                }
                let r = v.get("result").unwrap_or(&Value::Null);
                if int(r, "compact_revision")? > 0 {
                    return Ok(Some(Watched::Compacted));
                }
                let events = match r.get("events") {
                    Some(Value::Array(es)) => es
                        .iter()
                        .map(|e| {
                            let kv = kv(e.get("kv").unwrap_or(&Value::Null))?;
                            Ok(match e.get("type").and_then(Value::as_str) {
                                Some("DELETE") => Event::Delete(kv),
                                _ => Event::Put(kv),
                            })
                        })
                        .collect::<Result<Vec<_>, EtcdError>>()?,
                    _ => Vec::new(),
                };
                if events.is_empty() {
                    continue; // the creation notice, or a progress notice
                }
                return Ok(Some(Watched::Events(revision(r)?, events)));
            }
            if self.buf.len() > MAX_ANSWER {
                return Err(EtcdError::Malformed("watch message too large".into()));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(EtcdError::Unreachable(format!("watch: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_cover_the_prefix() {
        assert_eq!(prefix_end(b"alto/"), b"alto0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }

    #[test]
    fn the_gateways_json_is_read_as_its_api_says() {
        let v: Value = serde_json::from_str(
            r#"{"header":{"revision":"7"},"kvs":[{"key":"Zm9v","create_revision":"2",
            "mod_revision":"5","version":"2","value":"YmFy","lease":"99"}],"count":"1"}"#,
        )
        .unwrap();
        assert_eq!(revision(&v).unwrap(), 7);
        assert_eq!(
            kvs(&v).unwrap(),
            [Kv {
                key: b"foo".to_vec(),
                value: b"bar".to_vec(),
                create_revision: 2,
                mod_revision: 5,
                lease: 99
            }]
        );
        // Zero values are left out; errors are the gateway's object.
        assert_eq!(int(&json!({}), "lease").unwrap(), 0);
        assert!(int(&json!({"lease": "x"}), "lease").is_err());
        assert!(matches!(
            refusal(&json!({"error": "etcdserver: requested lease not found", "code": 5})),
            Some(EtcdError::Refused { code: 5, .. })
        ));
        assert!(refusal(&json!({"header": {}})).is_none());
    }
}
