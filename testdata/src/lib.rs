//! Shared test data: the embedded loopback topology, the RFC 7285 example messages, and the
//! generator of a production-sized network map and cost map.
//!
//! Layout:
//! - [`loopback`]: the embedded default topology (4 PIDs on 127.1.0.0/16 … 127.4.0.0/16 and a
//!   `default` PID for everything else), used by `alto-server` when started without a
//!   config, by the tests and by the swarm lab.
//! - [`rfc7285`]: the example messages of RFC 7285 as golden files, with the errata applied.
//! - [`production`]: a seeded generator of a map the size of a large ISP's deployment.

pub mod production;
pub mod torrent;

/// The embedded loopback topology: every PID is a loopback prefix, so clients on different
/// `127.x.0.0/16` addresses sit in different PIDs without root or namespaces.
pub mod loopback {
    /// Resource ID of the loopback network map.
    pub const NETWORK_MAP_ID: &str = "loopback-network-map";
    /// The network map, in the RFC 7285 §11.2.1.6 format.
    pub const NETWORK_MAP: &str = include_str!("../loopback/network-map.json");
    /// The numerical `routingcost` cost map, in the RFC 7285 §11.2.3.6 format.
    pub const ROUTINGCOST: &str = include_str!("../loopback/routingcost.json");
    /// The numerical `hopcount` cost map, in the RFC 7285 §11.2.3.6 format.
    pub const HOPCOUNT: &str = include_str!("../loopback/hopcount.json");
    /// The `alto-server` config naming the files above (relative to `testdata/loopback/`).
    pub const CONFIG: &str = include_str!("../loopback/alto.toml");
    /// The PIDs of the topology that hold clients, in order; `default` holds the rest.
    pub const PIDS: [&str; 4] = ["PID1", "PID2", "PID3", "PID4"];

    /// The folder holding the files of the topology, for configs that name files.
    pub fn dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("loopback")
    }
}

/// The example messages of RFC 7285, one file each, named after their section.
///
/// Errata applied (see `testdata/rfc7285/README.md`): the trailing comma in the §9.2.3
/// directory, the `/25` prefixes of the §11.3.1.7 filtered network map, and the property
/// name `my-default-network-map.pid` in the §11.4.1.7 request.
pub mod rfc7285 {
    /// The folder holding the example messages.
    pub fn dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rfc7285")
    }

    /// Reads one example message by file name, e.g. `11.2.1.7-response.json`.
    pub fn read(name: &str) -> String {
        let path = dir().join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }
}
