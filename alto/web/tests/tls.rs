//! HTTPS on real sockets (RFC 7285 §8.3.5): the serving path over TLS with a certificate a
//! test CA issued, the client verifying against that CA, and everything that must fail:
//! an unknown issuer, a certificate for another name, plain HTTP on the TLS port. A reload
//! serves the new certificate to new connections.

use alto_web::client::{http_client, ClientOptions};
use alto_web::tls::{client_config, ServerTls};
use alto_web::{serve_tls, simple, Limits};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::sync::Arc;
use test_support::tls::TestCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn server(tls: Arc<ServerTls>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = |_req, _remote| async { simple(StatusCode::OK, "text/plain", "over tls") };
    tokio::spawn(serve_tls(
        listener,
        Some(tls),
        handle,
        std::future::pending(),
        Limits::default(),
    ));
    addr
}

/// GET `url` verifying against `ca`: the body, or the error's text.
async fn get(url: &str, ca: &std::path::Path) -> Result<String, String> {
    let client = http_client(ClientOptions {
        tls: Some(client_config(Some(ca)).unwrap()),
        ..ClientOptions::default()
    });
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

#[tokio::test]
async fn should_serve_https_that_clients_verify_against_the_ca_they_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("alto", dir.path());
    let issued = ca.issue("server", &["127.0.0.1", "localhost"]);
    let tls = Arc::new(ServerTls::load(&issued.cert, &issued.key).unwrap());
    let addr = server(tls).await;
    assert_eq!(
        get(&format!("https://{addr}/"), &ca.cert()).await.unwrap(),
        "over tls"
    );
    assert_eq!(
        get(&format!("https://localhost:{}/", addr.port()), &ca.cert())
            .await
            .unwrap(),
        "over tls"
    );

    // Another CA's clients refuse the certificate.
    let other = TestCa::new("other", dir.path());
    let e = get(&format!("https://{addr}/"), &other.cert())
        .await
        .unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");

    // Plain HTTP on the TLS port gets no answer.
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), c.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.starts_with("HTTP/1.1 400") && !out.contains("over tls"),
        "{out}"
    );
}

#[tokio::test]
async fn should_refuse_a_certificate_for_another_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("alto", dir.path());
    let issued = ca.issue("server", &["alto.example"]);
    let addr = server(Arc::new(
        ServerTls::load(&issued.cert, &issued.key).unwrap(),
    ))
    .await;
    let e = get(&format!("https://{addr}/"), &ca.cert())
        .await
        .unwrap_err();
    assert!(e.contains("NotValidForName"), "{e}");
}

#[tokio::test]
async fn should_serve_the_new_certificate_after_a_reload_and_keep_the_old_on_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (
        TestCa::new("old", dir.path()),
        TestCa::new("new", dir.path()),
    );
    let issued = old_ca.issue("server", &["127.0.0.1"]);
    let tls = Arc::new(ServerTls::load(&issued.cert, &issued.key).unwrap());
    let addr = server(tls.clone()).await;
    let url = format!("https://{addr}/");
    assert!(get(&url, &old_ca.cert()).await.is_ok());

    // A broken file: refused, the old certificate stays.
    std::fs::write(&issued.key, "not a key").unwrap();
    assert!(tls.reload().is_err());
    assert!(get(&url, &old_ca.cert()).await.is_ok());

    // The new CA's certificate in the same files: new connections get it.
    new_ca.issue("server", &["127.0.0.1"]);
    tls.reload().unwrap();
    assert!(get(&url, &new_ca.cert()).await.is_ok());
    assert!(get(&url, &old_ca.cert()).await.is_err());
}
