//! Writes a production-sized ALTO deployment (network map, `routingcost` cost map and an
//! `alto-server` config) into a folder: `alto-gen-map DIR [--small] [--seed N]`.

use testdata::production::{generate, Params};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: alto-gen-map DIR [--small] [--seed N]");
        std::process::exit(2);
    };
    let mut params = if args.iter().any(|a| a == "--small") {
        Params::small()
    } else {
        Params::default()
    };
    if let Some(i) = args.iter().position(|a| a == "--seed") {
        match args.get(i + 1).and_then(|s| s.parse().ok()) {
            Some(seed) => params.seed = seed,
            None => {
                eprintln!("--seed needs a number");
                std::process::exit(2);
            }
        }
    }
    let g = generate(&params);
    let dir = std::path::Path::new(dir);
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
