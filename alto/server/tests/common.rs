//! Helpers shared by the integration tests: a server on port 0 over a map folder the test
//! owns, and raw HTTP requests with full control of the headers.

// Each test binary uses a part of these helpers; they are not an API.
#![allow(dead_code, missing_docs)]

use alto_server::{Running, Source};
use bytes::Bytes;
use std::path::{Path, PathBuf};

/// A copy of the loopback topology in a temporary folder, so tests can edit the files.
pub struct MapDir {
    pub dir: tempfile::TempDir,
}

impl MapDir {
    pub fn new(extra_config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for f in ["network-map.json", "routingcost.json", "hopcount.json"] {
            std::fs::copy(testdata::loopback::dir().join(f), dir.path().join(f)).unwrap();
        }
        let config = testdata::loopback::CONFIG
            .replace("[network-map]", &format!("{extra_config}\n[network-map]"));
        std::fs::write(dir.path().join("alto.toml"), config).unwrap();
        MapDir { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.path("alto.toml")
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    pub async fn start(&self) -> Running {
        start_file(&self.config()).await
    }
}

pub async fn start_file(config: &Path) -> Running {
    Running::start(
        Source::File(config.to_owned()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

pub async fn start_embedded() -> Running {
    Running::start(Source::Embedded, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A raw answer: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The ALTO error code and field of an error answer, checking its media type.
    pub fn alto_error(&self) -> (String, Option<String>, Option<String>) {
        assert_eq!(
            self.header("content-type"),
            Some("application/alto-error+json"),
            "status {}",
            self.status
        );
        let v = self.json();
        let s = |k: &str| v["meta"][k].as_str().map(str::to_owned);
        (s("code").unwrap(), s("field"), s("value"))
    }
}

pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    send(None, method, url, headers, body.into()).await
}

/// Sends a request, from `local` when given.
async fn send(
    local: Option<std::net::IpAddr>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Answer {
    let req = http::Request::builder().method(method).uri(url);
    let (parts, body) = test_support::http::exchange(local, req, headers, body).await;
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    request("GET", url, headers, Bytes::new()).await
}

pub async fn post(url: &str, content_type: &str, body: &str) -> Answer {
    request(
        "POST",
        url,
        &[("content-type", content_type)],
        body.to_owned(),
    )
    .await
}

pub const ECS: &str = "application/alto-endpointcostparams+json";
pub const CMF: &str = "application/alto-costmapfilter+json";
pub const NMF: &str = "application/alto-networkmapfilter+json";
pub const EPP: &str = "application/alto-endpointpropparams+json";

/// A request from a chosen local address.
pub async fn request_from(
    local: std::net::IpAddr,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    send(Some(local), method, url, headers, body.into()).await
}

pub const JOIN: &str = "application/alto-pidheadjoin+json";
pub const LEASE: &str = "application/alto-pidheadlease+json";

/// A listening socket on `ip:port` kept open for the rest of the test (`SO_REUSEPORT`, so
/// tests running at once may listen on the same address): the server's connect-back to a
/// candidate's tracker, and its probes of a head's, reach it. It accepts and closes every
/// connection, so the probes never fill its backlog.
pub fn listen_on(ip: &str, port: u16) -> u16 {
    let (port, l) = listener(ip, port);
    tokio::spawn(async move { while l.accept().await.is_ok() {} });
    port
}

/// A listening socket on `ip:port` (`SO_REUSEPORT`) and its port, for a test to close.
pub fn listener(ip: &str, port: u16) -> (u16, tokio::net::TcpListener) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.set_reuseport(true).unwrap();
    s.bind(format!("{ip}:{port}").parse().unwrap()).unwrap();
    let l = s.listen(64).unwrap();
    (l.local_addr().unwrap().port(), l)
}

/// Joins as `ip` with a tracker on `ip:port`, listening there first (port 0: any).
pub async fn join_as(base: &str, ip: &str, port: u16) -> Answer {
    let port = listen_on(ip, port);
    join_unreachable(base, ip, port).await
}

/// Joins as `ip` with a tracker on `ip:port`, whether anything listens there or not.
pub async fn join_unreachable(base: &str, ip: &str, port: u16) -> Answer {
    let body = format!(r#"{{"endpoint":"ipv4:{ip}","tracker":"http://{ip}:{port}/announce"}}"#);
    request_from(
        ip.parse().unwrap(),
        "POST",
        &format!("{base}/pidhead/join"),
        &[("content-type", JOIN)],
        body,
    )
    .await
}
