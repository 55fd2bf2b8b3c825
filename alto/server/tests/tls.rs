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

/// Runs `program` with `args`: its exit code and everything it wrote.
fn run(program: &str, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// An HTTPS server on the embedded maps with `issued`'s certificate.
async fn https(issued: &test_support::tls::Issued) -> Running {
    let app = App::with_tls(
        Source::Embedded,
        Some((issued.cert.clone(), issued.key.clone())),
    )
    .unwrap();
    Running::start_app(app, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_python_and_openssl_verify_the_server_and_refuse_what_they_must() {
    for p in ["curl", "openssl", "/usr/bin/python3"] {
        if !have(p) {
            test_support::skip(&format!("{p} is not installed"));
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("isp", dir.path());
    let ca_pem = ca.cert().display().to_string();
    let good = https(&ca.issue("good", &["127.0.0.1"])).await;
    let url = good.directory_url();
    let base = url.trim_end_matches("/directory").to_owned();

    // curl, with the CA: the directory and every resource it lists, GET ones by GET.
    let (code, dir_text) = run("curl", &["-sS", "--fail", "--cacert", &ca_pem, &url]);
    assert_eq!(code, 0, "{dir_text}");
    let ird: serde_json::Value = serde_json::from_str(&dir_text).unwrap();
    for (id, r) in ird["resources"].as_object().unwrap() {
        if r.get("accepts").is_some() {
            continue;
        }
        let uri = r["uri"].as_str().unwrap();
        let (code, text) = run(
            "curl",
            &[
                "-sS",
                "--fail",
                "--cacert",
                &ca_pem,
                &format!("{base}{uri}"),
            ],
        );
        assert_eq!(code, 0, "{id}: {text}");
    }
    let ecs = r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{"srcs":["ipv4:127.1.0.9"],"dsts":["ipv4:127.1.0.2"]}}"#;
    let (code, text) = run(
        "curl",
        &[
            "-sS",
            "--fail",
            "--cacert",
            &ca_pem,
            "-H",
            "Content-Type: application/alto-endpointcostparams+json",
            "-d",
            ecs,
            &format!("{base}/endpointcost/lookup"),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("endpoint-cost-map"), "{text}");

    // Python's ssl and openssl s_client verify the chain too.
    let py = format!(
        "import ssl, urllib.request\nctx = ssl.create_default_context(cafile='{ca_pem}')\nprint(urllib.request.urlopen('{url}', context=ctx).status)"
    );
    let (code, text) = run("/usr/bin/python3", &["-c", &py]);
    assert_eq!((code, text.trim()), (0, "200"), "{text}");
    let connect = url
        .trim_start_matches("https://")
        .trim_end_matches("/directory")
        .to_owned();
    let (code, text) = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            &ca_pem,
            "-verify_return_error",
            "-brief",
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Verification: OK"), "{text}");

    // The wrong CA, an expired certificate, a name mismatch: refused (curl: 60).
    let other = TestCa::new("other", dir.path());
    let (code, _) = run(
        "curl",
        &["-sS", "--cacert", &other.cert().display().to_string(), &url],
    );
    assert_eq!(code, 60);
    let expired = https(&ca.issue_valid("expired", &["127.0.0.1"], false)).await;
    let (code, text) = run(
        "curl",
        &["-sS", "--cacert", &ca_pem, &expired.directory_url()],
    );
    assert_eq!(code, 60, "{text}");
    assert!(text.contains("expired"), "{text}");
    let misnamed = https(&ca.issue("misnamed", &["alto.example"])).await;
    let (code, text) = run(
        "curl",
        &["-sS", "--cacert", &ca_pem, &misnamed.directory_url()],
    );
    assert_eq!(code, 60, "{text}");
    // Plain HTTP to the TLS port: a plain 400 that says so, and no resource.
    let plain = url.replace("https://", "http://");
    let (code, text) = run("curl", &["-sS", "--max-time", "20", "-i", &plain]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("HTTP/1.1 400") && text.contains("speaks HTTPS"),
        "{text}"
    );
    good.stop().await.unwrap();
    expired.stop().await.unwrap();
    misnamed.stop().await.unwrap();
}
