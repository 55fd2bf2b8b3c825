#!/usr/bin/env bash
# Seeds the fuzz corpora from testdata/ (fuzz/corpus/TARGET/, not in git): real clients'
# announces, the RFC 7285 examples, the loopback maps, and a few hand-made packets.
set -euo pipefail
cd "$(dirname "$0")"
td=../testdata
c=corpus
mkdir -p $c/{tracker_query,udp_codec,tracker_answer,metainfo,alto_request,map_loader,head_answer}

# Announce query strings captured from aria2, ctorrent, libtorrent, rtorrent, transmission.
n=0
for f in $td/announces/*.txt; do
    grep -o '^GET /[a-z]*?[^ ]*' "$f" | sed 's/^GET \/[a-z]*?//' | while read -r q; do
        n=$((n + 1))
        printf '%s' "$q" > "$c/tracker_query/$(basename "$f" .txt)-$n"
    done
done
printf 'info_hash=%%12%%34&info_hash=%%56' > $c/tracker_query/scrape

# BEP 15: connect request, announce request, connect and announce answers.
printf '\x00\x00\x04\x17\x27\x10\x19\x80\x00\x00\x00\x00\x00\x00\x00\x01' > $c/udp_codec/connect
{ printf '\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x02'
  printf 'AAAAAAAAAAAAAAAAAAAA-TR3000-abcdefghij'
  printf '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00'
  printf '\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x07\xff\xff\xff\xff\x1a\xe1'; } > $c/udp_codec/announce
printf '\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x09' > $c/udp_codec/connected
printf '\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x07\x08\x00\x00\x00\x01\x00\x00\x00\x02\x7f\x01\x00\x01\x1a\xe1' > $c/udp_codec/announced

# Tracker answers: compact and dictionary peers, IPv6, failure, scrape.
printf 'd8:completei1e10:incompletei2e8:intervali1800e5:peers6:\x7f\x01\x00\x01\x1a\xe1e' > $c/tracker_answer/compact
printf 'd8:intervali60e5:peersld2:ip9:127.1.0.24:porti6881eeee' > $c/tracker_answer/dict
printf 'd8:intervali60e6:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1e' > $c/tracker_answer/v6
printf 'd14:failure reason9:not foundd' > $c/tracker_answer/failure
printf 'd5:filesd20:AAAAAAAAAAAAAAAAAAAAd8:completei1e10:downloadedi0e10:incompletei0eeee' > $c/tracker_answer/scrape

# A .torrent with announce and announce-list, and a magnet link.
printf 'd8:announce26:http://a.example/announce13:announce-listll26:http://a.example/announceel18:udp://b.example:80ee4:infod6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAee' > $c/metainfo/torrent
printf 'magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x&tr=http%%3A%%2F%%2Ft.example%%2Fannounce' > $c/metainfo/magnet

# ALTO requests (RFC 7285 examples) and PID Head join and lease.
cp $td/rfc7285/*-request.json $c/alto_request/
printf '{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.5:6969/announce","capabilities":{"cpu-hz":2e9}}' > $c/alto_request/join
printf '{"token":"9f0c","action":"renew"}' > $c/alto_request/lease

# Maps: the RFC's network and cost maps and the loopback ones.
cp $td/rfc7285/*network-map*.json $td/loopback/*.json $c/map_loader/

# Head answers: the RFC's endpoint cost and cost map answers.
cp $td/rfc7285/11.5.1.7-response.json $td/rfc7285/11.3.2.7-response.json $c/head_answer/
printf '{"meta":{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"}},"endpoint-cost-map":{"ipv4:127.1.0.9":{"ipv4:127.1.0.2":1,"ipv4:127.2.0.2":2,"ipv4:127.3.0.2":3}}}' > $c/head_answer/ordinal
