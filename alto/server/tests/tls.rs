//! `alto-server` over HTTPS (RFC 7285 §8.3.5) with a certificate a test CA issued: the
//! directory and maps read with `alto-client` verifying against that CA, the plain-HTTP
//! listener only where configured, and the certificate reloaded with the maps.

mod common;

use alto_client::AltoClient;
use alto_server::{App, Running, Source};
use alto_web::tls::client_config;
use common::MapDir;
use test_support::tls::TestCa;

async fn network_map_tag(url: &str, ca: &std::path::Path) -> Result<String, String> {
    let c = AltoClient::new(url)
        .unwrap()
        .with_tls(client_config(Some(ca)).unwrap());
    c.network_map()
        .await
        .map(|m| m.meta.vtag.tag)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn serves_https_with_its_certificate_and_plain_http_only_where_configured() {
    let maps = MapDir::new("");
    let ca = TestCa::new("isp", maps.dir.path());
    ca.issue("server", &["127.0.0.1"]);
    let plain = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = maps.read("alto.toml").replace(
        "[network-map]",
        &format!(
            "[tls]\ncert = \"server.pem\"\nkey = \"server-key.pem\"\nplain-listen = \"{plain}\"\n\n[network-map]"
        ),
    );
    maps.write("alto.toml", &config);
    let app = App::new(Source::File(maps.config())).unwrap();
    assert_eq!(app.plain_listen(), Some(plain));
    let server = Running::start_app(app, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = server.directory_url();
    assert!(url.starts_with("https://"), "{url}");
    let tag = network_map_tag(&url, &ca.cert()).await.unwrap();
    assert!(!tag.is_empty());
    // Another CA's client refuses the server; plain HTTP on the TLS port gets nothing.
    let other = TestCa::new("other", maps.dir.path());
    let e = network_map_tag(&url, &other.cert()).await.unwrap_err();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );
    let http = url.replace("https://", "http://");
    assert!(network_map_tag(&http, &ca.cert()).await.is_err());
    // The plain listener the operator asked for serves the same maps.
    let plain_tag = network_map_tag(&format!("http://{plain}/directory"), &ca.cert()).await;
    assert_eq!(plain_tag.unwrap(), tag);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_certificate_is_reloaded_with_the_maps() {
    let maps = MapDir::new("");
    let (old, new) = (
        TestCa::new("old", maps.dir.path()),
        TestCa::new("new", maps.dir.path()),
    );
    let issued = old.issue("server", &["127.0.0.1"]);
    let app = App::with_tls(
        Source::File(maps.config()),
        Some((issued.cert.clone(), issued.key.clone())),
    )
    .unwrap();
    let server = Running::start_app(app, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = server.directory_url();
    assert!(network_map_tag(&url, &old.cert()).await.is_ok());
    new.issue("server", &["127.0.0.1"]);
    server.app.reload().unwrap();
    assert!(network_map_tag(&url, &new.cert()).await.is_ok());
    assert!(network_map_tag(&url, &old.cert()).await.is_err());
    // A broken key: the reload is refused and the new certificate stays served.
    std::fs::write(&issued.key, "junk").unwrap();
    let e = server.app.reload().unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(network_map_tag(&url, &new.cert()).await.is_ok());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn joins_need_a_client_certificate_from_the_operators_ca_when_configured() {
    let maps = MapDir::new("");
    let dir = maps.dir.path();
    let (servers, members) = (TestCa::new("servers", dir), TestCa::new("members", dir));
    servers.issue("server", &["127.0.0.1"]);
    let config = maps.read("alto.toml").replace(
        "[network-map]",
        &format!(
            "[tls]\ncert = \"server.pem\"\nkey = \"server-key.pem\"\nclient-ca = \"{}\"\n\
             client-cert-for = [\"pid-head-join\"]\n\n[network-map]",
            members.cert().display()
        ),
    );
    maps.write("alto.toml", &config);
    let server = Running::start_app(
        App::new(Source::File(maps.config())).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = server.directory_url();
    let port = common::listen_on("127.1.0.5", 0);
    let join = alto_model::pidhead::JoinRequest {
        endpoint: "ipv4:127.1.0.5".into(),
        tracker: format!("http://127.1.0.5:{port}/announce"),
        ecs_url: None,
        capabilities: Default::default(),
    };
    let client = |identity: Option<(&std::path::Path, &std::path::Path)>| {
        let tls = alto_web::tls::client_config_as(Some(&servers.cert()), identity).unwrap();
        AltoClient::new(&url)
            .unwrap()
            .with_local_address("127.1.0.5".parse().unwrap())
            .with_tls(tls)
    };
    // Without a certificate: 403, no head; the maps are still served.
    let anonymous = client(None);
    let e = anonymous.join(&join).await.unwrap_err().to_string();
    assert!(e.contains("403"), "{e}");
    assert!(anonymous.network_map().await.is_ok());
    // With one the servers' CA issued (not the members' CA): refused in the handshake.
    let stranger = servers.issue("stranger", &["127.1.0.5"]);
    let e = client(Some((&stranger.cert, &stranger.key)))
        .join(&join)
        .await;
    assert!(e.is_err());
    // With one the members' CA issued: elected.
    let member = members.issue("member", &["127.1.0.5"]);
    let a = client(Some((&member.cert, &member.key)))
        .join(&join)
        .await
        .unwrap();
    assert_eq!(a.role, alto_model::pidhead::Role::Head);
    server.stop().await.unwrap();
}
