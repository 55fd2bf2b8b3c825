//! Helpers shared by the integration tests of several crates and by the `--netns` lab: HTTP
//! requests from a chosen loopback address (the PID a request comes from is its source
//! address), announce queries, network namespaces, the third-party BitTorrent clients, waiting
//! with a deadline, and [`skip`], the one way a test may decline to run.
//!
//! # Layout
//! - [`http`]: GET and POST from a chosen local address, announce queries.
//! - [`netns`]: namespaces joined by a bridge, links shaped with `tbf`, removed on drop.
//! - [`clients`]: aria2, transmission and libtorrent launched with discovery off.
//! - [`wait`]: waiting for state a test cannot be told about, with a deadline.
//! - [`etcd`]: a real etcd cluster on loopback ports, removed on drop.
//! - [`tls`]: a CA made in the test and the server certificates it issues.
//! - [`skip`]: an early return with its reason, which CI turns into a failure.
//! - [`spawn_with_first_line`]: a process and the first line it prints.

pub mod clients;
pub mod etcd;
pub mod http;
pub mod netns;
pub mod tls;
pub mod wait;

/// Set by `scripts/test` when asked to (`.ci/run` does): every test that would return early
/// because the machine lacks something fails instead, so a green CI means every test ran.
pub const REQUIRE_ALL: &str = "ALTO_TESTS_REQUIRE_ALL";

/// Declines to run a test for `why` (no root, no `ip netns`, a client missing): prints the
/// reason and returns, or panics where [`REQUIRE_ALL`] is set. Call it and then `return`.
pub fn skip(why: &str) {
    if std::env::var_os(REQUIRE_ALL).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("this test cannot run here and {REQUIRE_ALL} is set: {why}");
    }
    println!("skipped: {why}");
}

/// Sends `sig` (as `kill` takes it: `-STOP`, `-HUP`, …) to the process `child`; whether it
/// was delivered.
pub fn signal(child: &std::process::Child, sig: &str) -> bool {
    std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `cmd` with its standard output piped (standard error dropped) and returns it with
/// the first line it prints: where the servers and clients here say what they bound or wrote.
pub fn spawn_with_first_line(cmd: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let line = std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .lines()
        .next()
        .expect("a first line")
        .expect("readable stdout");
    (child, line)
}
