"""A libtorrent (python3-libtorrent) peer for the interop tests: seeds or downloads one
torrent on one address, with DHT, local service discovery, UPnP, NAT-PMP and PEX off, so that
it talks only to the tracker and the peers the tracker names.

Run with Debian's interpreter: /usr/bin/python3 lt_client.py --torrent T --save DIR
    --listen IP:PORT [--seed] [--timeout SECONDS]
Prints `seeding` once it has the whole torrent (a seeder, at start; a downloader, when done,
after which it exits 0). Exits 1 on timeout or error.
"""
import argparse
import sys
import time

import libtorrent as lt

ap = argparse.ArgumentParser()
ap.add_argument("--torrent", required=True)
ap.add_argument("--save", required=True)
ap.add_argument("--listen", required=True)
ap.add_argument("--seed", action="store_true")
ap.add_argument("--timeout", type=float, default=120)
a = ap.parse_args()
ip = a.listen.rsplit(":", 1)[0]

settings = {
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "listen_interfaces": a.listen,
    "outgoing_interfaces": ip,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
    "allow_multiple_connections_per_ip": True,
    "announce_to_all_trackers": True,
    "alert_mask": 0,
}
# Flags 0: none of the default plugins, so no ut_pex (peer exchange) and no ut_metadata.
session = lt.session(settings, 0)
handle = session.add_torrent({"ti": lt.torrent_info(a.torrent), "save_path": a.save})
deadline = time.time() + a.timeout
said = False
while time.time() < deadline:
    st = handle.status()
    if st.errc.value() != 0:
        print("error: " + st.errc.message(), flush=True)
        sys.exit(1)
    if st.is_seeding and not said:
        print("seeding", flush=True)
        said = True
        if not a.seed:
            time.sleep(1)  # let the `completed` announce go out
            sys.exit(0)
    time.sleep(0.1)
print("timeout: progress %.3f" % handle.status().progress, flush=True)
sys.exit(1)
