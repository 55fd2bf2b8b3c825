//! ALTO server replicas sharing one PID Head election in a real 3-member etcd cluster
//! (`[pid-heads] store = "etcd"`), with faults injected: a replica killed (SIGKILL), the etcd
//! leader killed, a replica stopped (SIGSTOP) past the lease TTL and continued, etcd out of
//! reach. An observer samples every live replica's head directory every 100 ms throughout:
//! no PID ever has two heads with the same epoch, and two different heads of one PID are never
//! both published for longer than one lease TTL.

mod common;

use alto_web::client::{http_client, ClientOptions};
use common::*;
use http_body_util::{BodyExt, Full};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::etcd::{self, Cluster};

/// The lease TTL of these tests, seconds.
const TTL: u64 = 3;

/// An `alto-server` process; killed on drop.
struct Replica {
    child: Child,
    base: String,
}

impl Replica {
    fn spawn(config: &std::path::Path) -> Replica {
        let (child, line) = test_support::spawn_with_first_line(
            Command::new(env!("CARGO_BIN_EXE_alto-server"))
                .args(["--config", config.to_str().unwrap()])
                .args(["--listen", "127.0.0.1:0"]),
        );
        let dir = line.strip_prefix("ALTO directory: ").unwrap();
        let base = dir.trim_end_matches("/directory").to_owned();
        Replica { child, base }
    }

    fn signal(&self, sig: &str) {
        assert!(test_support::signal(&self.child, sig), "kill {sig}");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The maps of the loopback topology with the election in `cluster`.
fn maps_on(endpoints: &[String]) -> MapDir {
    maps_with(endpoints, "")
}

/// [`maps_on`] with more `[pid-heads]` lines.
fn maps_with(endpoints: &[String], more: &str) -> MapDir {
    let list: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    MapDir::new(&format!(
        "[pid-heads]\nstore = \"etcd\"\netcd-endpoints = [{}]\nlease-ttl-secs = {TTL}\n\
         etcd-timeout-ms = 1000\n{more}",
        list.join(", ")
    ))
}

/// A PID's head as one directory names it: endpoint and epoch.
type Named = (String, u64);

/// The heads a directory names, or `None` when the replica does not answer in time.
async fn directory(base: &str) -> Option<BTreeMap<String, Named>> {
    let client = http_client(ClientOptions::default());
    let req = http::Request::get(format!("{base}/pidheads"))
        .body(Full::new(bytes::Bytes::new()))
        .ok()?;
    let read = async {
        let resp = client.request(req).await.ok()?;
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice::<serde_json::Value>(&body).ok()
    };
    let v = tokio::time::timeout(Duration::from_millis(300), read)
        .await
        .ok()??;
    let map = v["property-map"].as_object()?;
    Some(
        map.iter()
            .filter_map(|(entity, props)| {
                let pid = entity.split_once(".pid:")?.1.to_owned();
                let tracker = props["head-tracker"].as_str()?;
                let ip = tracker.split("//").nth(1)?.split(':').next()?.to_owned();
                Some((pid, (ip, props["head-epoch"].as_u64()?)))
            })
            .collect(),
    )
}

/// Samples the directories of the replicas it is given every 100 ms and records what breaks
/// the election's promises.
struct Observer {
    bases: Arc<Mutex<Vec<String>>>,
    violations: Arc<Mutex<Vec<String>>>,
    samples: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    fn start(bases: Vec<String>) -> Observer {
        let bases = Arc::new(Mutex::new(bases));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let samples = Arc::new(Mutex::new(0));
        let task = {
            let (bases, violations, samples) = (bases.clone(), violations.clone(), samples.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                // (PID, epoch) → the endpoint first seen with it.
                let mut epochs: BTreeMap<(String, u64), String> = BTreeMap::new();
                // PID → since when two different heads have been published at once.
                let mut split: BTreeMap<String, Instant> = BTreeMap::new();
                loop {
                    let now = bases.lock().unwrap().clone();
                    let mut published: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                    for base in &now {
                        let Some(dir) = directory(base).await else {
                            continue;
                        };
                        *samples.lock().unwrap() += 1;
                        for (pid, (ip, epoch)) in dir {
                            let first = epochs.entry((pid.clone(), epoch)).or_insert(ip.clone());
                            if *first != ip {
                                violations
                                    .lock()
                                    .unwrap()
                                    .push(format!("{pid}: epoch {epoch} named {first} and {ip}"));
                            }
                            published.entry(pid).or_default().insert(ip);
                        }
                    }
                    for (pid, ips) in &published {
                        if ips.len() < 2 {
                            split.remove(pid);
                            continue;
                        }
                        let since = *split.entry(pid.clone()).or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_secs(TTL) {
                            violations.lock().unwrap().push(format!(
                                "{pid}: {ips:?} published at once for over {TTL} s ({:?} in)",
                                start.elapsed()
                            ));
                            split.remove(pid);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Observer {
            bases,
            violations,
            samples,
            task,
        }
    }

    fn forget(&self, base: &str) {
        self.bases.lock().unwrap().retain(|b| b != base);
    }

    fn finish(self) {
        self.task.abort();
        let samples = *self.samples.lock().unwrap();
        assert!(
            samples > 20,
            "the observer sampled only {samples} directories"
        );
        let v = self.violations.lock().unwrap();
        assert!(v.is_empty(), "{v:#?}");
    }
}

async fn lease_from(base: &str, ip: &str, token: &str, action: &str) -> Answer {
    request_from(
        ip.parse().unwrap(),
        "POST",
        &format!("{base}/pidhead/lease"),
        &[("content-type", LEASE)],
        format!(r#"{{"token":"{token}","action":"{action}"}}"#),
    )
    .await
}

/// Waits until `ok` holds of every replica's directory.
async fn until_every(bases: &[&str], what: &str, ok: impl Fn(&BTreeMap<String, Named>) -> bool) {
    let start = Instant::now();
    loop {
        let mut all = true;
        for b in bases {
            all &= directory(b).await.is_some_and(|d| ok(&d));
        }
        if all {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn head_of<'a>(d: &'a BTreeMap<String, Named>, pid: &str) -> Option<&'a Named> {
    d.get(pid)
}

fn cluster() -> Option<Cluster> {
    if !etcd::available() {
        test_support::skip("etcd is not installed (Debian: etcd-server etcd-client)");
        return None;
    }
    Some(Cluster::start(3).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_election_through_a_killed_replica_and_etcd_leader() {
    let Some(mut cluster) = cluster() else { return };
    let maps = maps_on(&cluster.endpoints());
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::spawn(&maps.config())).collect();
    let [a, b, c] = [&replicas[0].base, &replicas[1].base, &replicas[2].base];
    let observer = Observer::start(vec![a.clone(), b.clone(), c.clone()]);

    // Joins through A and B for the same PID elect one head.
    let head = join_as(a, "127.1.0.5", 0).await.json();
    assert_eq!(head["role"], "head", "{head}");
    let mut token = head["lease"]["token"].as_str().unwrap().to_owned();
    let epoch = head["head"]["epoch"].as_u64().expect("an epoch");
    let member = join_as(b, "127.1.0.6", 0).await.json();
    assert_eq!(member["role"], "member", "{member}");
    assert_eq!(member["head"]["endpoint"], "ipv4:127.1.0.5");
    assert_eq!(member["head"]["epoch"].as_u64(), Some(epoch));
    // Every replica's directory names it, with its epoch (B and C learn of it by the watch).
    let named = ("127.1.0.5".to_owned(), epoch);
    until_every(&[a, b, c], "every directory names the head", |d| {
        head_of(d, "PID1") == Some(&named)
    })
    .await;

    // Replica A is killed: renewals go through B and C, and the head keeps its epoch. A
    // client that knows the three replicas (as the plugin and the shim do with `--alto`
    // repeated) fails over to B by itself.
    replicas[0].signal("-KILL");
    observer.forget(a);
    let dirs: Vec<String> = [a, b, c].iter().map(|r| format!("{r}/directory")).collect();
    let client = alto_client::AltoClient::replicas(&dirs)
        .unwrap()
        .with_local_address("127.1.0.5".parse().unwrap());
    let renewed = client
        .lease(&alto_model::pidhead::LeaseRequest {
            token: token.clone(),
            action: alto_model::pidhead::LeaseAction::Renew,
        })
        .await
        .expect("a renewal through the next replica");
    assert_eq!(renewed.head.and_then(|h| h.epoch), Some(epoch));
    assert_eq!(client.directory_url(), dirs[1], "the client moved on to B");
    for k in 0..(2 * TTL) {
        let via = if k % 2 == 0 { b } else { c };
        let r = lease_from(via, "127.1.0.5", &token, "renew").await;
        assert_eq!(r.status, 200, "renewal through {via}: {:?}", r.body);
        assert_eq!(r.json()["head"]["epoch"].as_u64(), Some(epoch));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    until_every(&[b, c], "the head outlives replica A", |d| {
        head_of(d, "PID1") == Some(&named)
    })
    .await;

    // The etcd leader is killed: renewals and elections continue once etcd has a new one. A
    // head whose lease lapsed meanwhile (etcd chose a leader more slowly than one TTL) joins
    // again, as the plugin does when a renewal is refused; so does the standby.
    let leader = cluster.leader().expect("a leader");
    cluster.kill(leader);
    let killed = Instant::now();
    let mut recovered = None;
    let mut answers = Vec::new();
    while recovered.is_none() && killed.elapsed() < Duration::from_secs(15) {
        // Clients fail over between replicas (and the replicas between etcd members).
        for via in [b, c] {
            let r = lease_from(via, "127.1.0.5", &token, "renew").await;
            let body = String::from_utf8_lossy(&r.body).into_owned();
            answers.push(format!(
                "{:?} renew via {via}: {} {body}",
                killed.elapsed(),
                r.status
            ));
            if r.status == 200 {
                recovered = Some(("127.1.0.5".to_owned(), epoch));
                break;
            }
            if r.status == 400 && body.contains("token") {
                for ip in ["127.1.0.5", "127.1.0.6"] {
                    let j = join_as(via, ip, 0).await;
                    if j.status != 200 {
                        continue;
                    }
                    let j = j.json();
                    if j["role"] == "head" {
                        token = j["lease"]["token"].as_str().unwrap().to_owned();
                        let e = j["head"]["epoch"].as_u64().expect("an epoch");
                        assert!(
                            e > epoch,
                            "a new headship has a higher epoch: {e} after {epoch}"
                        );
                        recovered = Some((ip.to_owned(), e));
                    } else if let Some(e) = j["head"]["epoch"].as_u64() {
                        let head = j["head"]["endpoint"].as_str().unwrap_or_default();
                        let head = head.trim_start_matches("ipv4:").to_owned();
                        assert!(e >= epoch, "epochs never go back: {e} after {epoch}");
                        if head != ip {
                            // The other one is head; its renewals are its own, so stop here.
                            recovered = Some((head, e));
                        }
                    }
                    break;
                }
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Some((head_ip, head_epoch)) = recovered else {
        panic!(
            "PID1 had no head again after the etcd leader was killed:\n{}",
            answers.join("\n")
        )
    };
    println!(
        "PID1's head is {head_ip} (epoch {head_epoch}, before {epoch}) {:?} after the etcd leader was killed",
        killed.elapsed()
    );
    let pid2 = join_as(c, "127.2.0.5", 0).await.json();
    assert_eq!(pid2["role"], "head", "{pid2}");
    let epoch2 = pid2["head"]["epoch"].as_u64().unwrap();
    assert!(epoch2 > epoch, "epochs grow: {epoch2} after {epoch}");

    // The head stops renewing: within a TTL (and a tick) the standby is promoted, with a
    // higher epoch, and every replica names it.
    let standby = if head_ip == "127.1.0.5" {
        "127.1.0.6"
    } else {
        "127.1.0.5"
    };
    let j = join_as(b, standby, 0).await.json();
    assert_eq!(j["role"], "member", "{j}");
    until_every(
        &[b, c],
        "the standby is promoted once the lease lapses",
        |d| head_of(d, "PID1").is_some_and(|(ip, e)| ip == standby && *e > head_epoch),
    )
    .await;
    observer.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopped_past_the_ttl_serves_no_stale_head_when_it_continues() {
    let Some(cluster) = cluster() else { return };
    let maps = maps_on(&cluster.endpoints());
    let b = Replica::spawn(&maps.config());
    let c = Replica::spawn(&maps.config());
    let observer = Observer::start(vec![b.base.clone(), c.base.clone()]);
    let head = join_as(&b.base, "127.1.0.5", 0).await.json();
    let token = head["lease"]["token"].as_str().unwrap().to_owned();
    let epoch = head["head"]["epoch"].as_u64().unwrap();
    join_as(&b.base, "127.1.0.6", 0).await;
    let old = ("127.1.0.5".to_owned(), epoch);
    until_every(&[&c.base], "C names the head", |d| {
        head_of(d, "PID1") == Some(&old)
    })
    .await;

    // C stops; meanwhile the head resigns and the standby takes over (and renews).
    c.signal("-STOP");
    observer.forget(&c.base);
    let r = lease_from(&b.base, "127.1.0.5", &token, "resign").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let new = join_as(&b.base, "127.1.0.6", 0).await.json();
    assert_eq!(new["role"], "head", "{new}");
    let new_token = new["lease"]["token"].as_str().unwrap().to_owned();
    for _ in 0..(2 * TTL) {
        let r = lease_from(&b.base, "127.1.0.6", &new_token, "renew").await;
        assert_eq!(r.status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // C continues: from its first answer on it never names the resigned head.
    c.signal("-CONT");
    let start = Instant::now();
    let mut caught_up = false;
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(d) = directory(&c.base).await {
            assert_ne!(head_of(&d, "PID1"), Some(&old), "C served a stale head");
            caught_up |= head_of(&d, "PID1").is_some_and(|(ip, _)| ip == "127.1.0.6");
        }
        lease_from(&b.base, "127.1.0.6", &new_token, "renew").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(caught_up, "C never named the new head");
    observer.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_etcd_member_hangs_follows_the_election_through_another() {
    let Some(cluster) = cluster() else { return };
    // The member that will hang is not the leader, so the cluster itself keeps going; A
    // watches through it first, B never talks to it.
    let leader = cluster.leader().expect("a leader");
    let hung = (leader + 1) % 3;
    let all = cluster.endpoints();
    let rotated: Vec<String> = (0..3).map(|k| all[(hung + k) % 3].clone()).collect();
    let others: Vec<String> = rotated[1..].to_vec();
    let (maps_a, maps_b) = (maps_on(&rotated), maps_on(&others));
    let a = Replica::spawn(&maps_a.config());
    let b = Replica::spawn(&maps_b.config());
    let (ab, bb) = (a.base.as_str(), b.base.as_str());
    let observer = Observer::start(vec![a.base.clone(), b.base.clone()]);
    let first = join_as(bb, "127.1.0.5", 0).await.json();
    assert_eq!(first["role"], "head", "{first}");
    until_every(&[ab, bb], "both name PID1's head", |d| {
        head_of(d, "PID1").is_some()
    })
    .await;

    // A's member hangs: its watch stays open and silent. A head elected through B must still
    // reach A's directory, through another member.
    cluster.pause(hung);
    let second = join_as(bb, "127.2.0.5", 0).await.json();
    assert_eq!(second["role"], "head", "{second}");
    let epoch = second["head"]["epoch"].as_u64().unwrap();
    let token = second["lease"]["token"].as_str().unwrap().to_owned();
    let named = ("127.2.0.5".to_owned(), epoch);
    // The head renews through B meanwhile, so that its lease outlasts a slow machine.
    let start = Instant::now();
    while directory(ab)
        .await
        .is_none_or(|d| head_of(&d, "PID2") != Some(&named))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "A names the head elected through B"
        );
        lease_from(bb, "127.2.0.5", &token, "renew").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    cluster.resume(hung);
    observer.finish();
}

#[tokio::test]
async fn without_etcd_a_replica_refuses_joins_with_503_and_retry_after() {
    // A port nobody listens on: etcd is out of reach.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maps = maps_on(&[format!("http://127.0.0.1:{port}")]);
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    let r = join_as(&base, "127.1.0.5", 0).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(String::from_utf8_lossy(&r.body).contains("etcd"));
    // Renewals too; the directory is empty, not an error.
    let r = lease_from(&base, "127.1.0.5", "00", "renew").await;
    assert_eq!(r.status, 503);
    assert_eq!(get(&format!("{base}/pidheads"), &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_replica_needs_the_etcd_ca_and_a_client_certificate() {
    if !etcd::available() {
        test_support::skip("etcd is not installed (Debian: etcd-server etcd-client)");
        return;
    }
    let cluster = Cluster::start_tls(1).unwrap();
    let tls = cluster.tls().unwrap().clone();
    assert!(cluster.endpoint(0).starts_with("https://"));
    // With the CA and a client certificate: elected, with an epoch.
    let with_cert = maps_with(
        &cluster.endpoints(),
        &format!(
            "etcd-ca = {:?}\netcd-cert = {:?}\netcd-key = {:?}",
            tls.ca, tls.cert, tls.key
        ),
    );
    let server = with_cert.start().await;
    let base = format!("http://{}", server.addr);
    let head = join_as(&base, "127.1.0.5", 0).await.json();
    assert_eq!(head["role"], "head", "{head}");
    assert!(head["head"]["epoch"].as_u64().is_some(), "{head}");
    // Without the client certificate etcd refuses the connection: 503, no guess.
    let without_cert = maps_with(&cluster.endpoints(), &format!("etcd-ca = {:?}", tls.ca));
    let refused = without_cert.start().await;
    let r = join_as(&format!("http://{}", refused.addr), "127.1.0.6", 0).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    // Without the CA the members' certificates are not trusted: 503 too.
    let untrusted = maps_with(&cluster.endpoints(), "");
    let untrusted = untrusted.start().await;
    let r = join_as(&format!("http://{}", untrusted.addr), "127.1.0.7", 0).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
}
