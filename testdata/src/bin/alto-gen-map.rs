//! Writes a production-sized ALTO deployment (network map, `routingcost` cost map and an
//! `alto-server` config) into a folder: `alto-gen-map DIR [--small] [--seed N]`.

use clap::Parser;
use testdata::production::{generate, Params};

/// Writes a production-sized ALTO deployment into a folder.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The folder to write `network-map.json`, `routingcost.json` and `alto.toml` into.
    dir: std::path::PathBuf,
    /// A small deployment (for quick tries) instead of the production-sized one.
    #[arg(long)]
    small: bool,
    /// Seed of the generator: the same seed writes the same maps.
    #[arg(long)]
    seed: Option<u64>,
}

fn main() {
    let args = Args::parse();
    let mut params = if args.small {
        Params::small()
    } else {
        Params::default()
    };
    if let Some(seed) = args.seed {
        params.seed = seed;
    }
    let g = generate(&params);
    let dir = args.dir.as_path();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    write("network-map.json", &g.network_map);
    write("routingcost.json", &g.routingcost);
    write(
        "alto.toml",
        "listen = \"127.0.0.1:7285\"\n\n[network-map]\nresource-id = \"production-network-map\"\nfile = \"network-map.json\"\n\n[[cost-map]]\nmetric = \"routingcost\"\nfile = \"routingcost.json\"\n",
    );
    println!(
        "wrote {}: {} PIDs, {} prefixes, {} cost pairs",
        dir.display(),
        g.pids,
        g.prefixes,
        g.pairs
    );
}
