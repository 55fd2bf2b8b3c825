//! Writes the testers' torrents into a folder: deterministic payloads (the same bytes on
//! every machine, so any tester's copy seeds any other's) and a BEP 3 `.torrent` for each,
//! announcing to the announce front's default URL.
//!
//! `alto-gen-torrents DIR [--announce URL]`: `DIR/data/NAME` and `DIR/NAME.torrent` for each
//! payload of [`testdata::torrent::TESTERS`].

use clap::Parser;
use testdata::torrent::{payload, single_file, TESTERS};

/// Writes deterministic payloads and their `.torrent` files into a folder.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The folder: payloads go to `DIR/data/`, torrents to `DIR/`.
    dir: std::path::PathBuf,
    /// The tracker the torrents announce to (the announce front of `tracker-shim --front`).
    #[arg(long, default_value = "http://127.0.0.1:6969/announce")]
    announce: String,
}

fn main() {
    let args = Args::parse();
    let data_dir = args.dir.join("data");
    if let Err(e) = std::fs::create_dir_all(&data_dir) {
        eprintln!("cannot create {}: {e}", data_dir.display());
        std::process::exit(1);
    }
    for t in TESTERS {
        let data = payload(t.bytes, t.seed);
        let torrent = single_file(t.name, &data, t.piece_bytes, &args.announce, &[]);
        let file = args.dir.join(format!("{}.torrent", t.name));
        for (path, bytes) in [
            (data_dir.join(t.name), &data),
            (file.clone(), &torrent.metainfo),
        ] {
            if let Err(e) = std::fs::write(&path, bytes) {
                eprintln!("cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        let hex: String = torrent
            .info_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!("{}  {} bytes  info hash {hex}", file.display(), t.bytes);
    }
}
