//! How a Rust application on librqbit adopts ALTO-guided peer discovery: a few lines around
//! [`alto_plugin::AltoSession`].
//!
//! ```sh
//! cargo run -p alto-server &                                   # the ALTO server
//! cargo run -p alto-examples --example librqbit_with_alto -- 127.1.0.5 file.torrent downloads
//! ```

use alto_plugin::{AltoSession, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(ip), Some(torrent), Some(output)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: librqbit_with_alto IP TORRENT OUTPUT_DIR");
    };

    // 1. Say where the client lives and which ALTO server to ask.
    let config = Config::new(ip.parse()?, output.into()).alto("http://127.0.0.1:7285/directory");
    // 2. Start: it joins the ALTO server, runs the head when elected, and starts librqbit
    //    with the local announce proxy as its only tracker (DHT, LSD and UPnP off).
    let session = AltoSession::start(config).await?;
    // 3. Add torrents as usual; their trackers are announced to through the proxy.
    let t = session.add(&std::fs::read(&torrent)?).await?;
    t.wait_completed().await?;
    // 4. See where the bytes came from.
    let report = session.report(&t);
    println!(
        "done: {:.0}% of the bytes from the own PID ({:?})",
        report.own_pid_share * 100.0,
        report.pid
    );
    // 5. Leave cleanly: `stopped` upstream, and a head resigns.
    session.shutdown().await;
    Ok(())
}
