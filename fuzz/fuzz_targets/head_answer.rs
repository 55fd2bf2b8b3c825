//! A PID Head's answer as the ALTO server checks it before relaying (alto_model::check):
//! an endpoint cost answer and a filtered cost map, in both modes, against the loopback
//! maps. The check must refuse or accept, never panic, whatever the head sends.
#![no_main]

use alto_model::messages::{ReqEndpointCostMap, ReqFilteredCostMap};
use alto_model::{check, media, InformationBase, QueryLimits};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

struct Fixture {
    base: InformationBase,
    ecs: [ReqEndpointCostMap; 2],
    fcm: [ReqFilteredCostMap; 2],
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ecs = |mode: &str| {
            ReqEndpointCostMap::parse(format!(
                r#"{{"cost-type":{{"cost-mode":"{mode}","cost-metric":"routingcost"}},"endpoints":{{"srcs":["ipv4:127.1.0.9"],"dsts":["ipv4:127.1.0.2","ipv4:127.2.0.2","ipv4:127.3.0.2"]}}}}"#
            ).as_bytes())
            .expect("request")
        };
        let fcm = |mode: &str| {
            ReqFilteredCostMap::parse(format!(
                r#"{{"cost-type":{{"cost-mode":"{mode}","cost-metric":"routingcost"}},"pids":{{"srcs":["PID1"],"dsts":[]}}}}"#
            ).as_bytes())
            .expect("request")
        };
        Fixture {
            base: common::base(),
            ecs: [ecs("numerical"), ecs("ordinal")],
            fcm: [fcm("numerical"), fcm("ordinal")],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let limits = QueryLimits::DEFAULT;
    let client = "127.1.0.9".parse().expect("address");
    let mut i = 0usize;
    let mut pick = |n: usize| {
        i = i.wrapping_mul(31).wrapping_add(7);
        i % n
    };
    for req in &f.ecs {
        let ctype = Some(media::ENDPOINT_COST);
        let _ = check::endpoint_cost(&f.base, req, client, ctype, data, &limits, &mut pick);
    }
    for req in &f.fcm {
        let ctype = Some(media::COST_MAP);
        let _ = check::filtered_cost_map(&f.base, req, ctype, data, &limits, &mut pick);
    }
});
