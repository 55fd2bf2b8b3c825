//! The servers' counters a run reads: the ALTO server's in process, the heads' by scraping
//! their `/metrics` (Prometheus text) with the workspace's HTTP client.

use alto_web::client::{http_client, ClientOptions};
use http_body_util::{BodyExt, Full};
use std::time::Duration;

/// Time allowed for one scrape: a head that does not answer counts nothing, it does not hold
/// up the report.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// Requests the ALTO server handled by its counters (`/metrics` text): all, and those of
/// arriving clients (directory reads and joins).
pub fn alto_requests(metrics: &str) -> (u64, u64) {
    let arrivals = ["directory", "pid-head-join"]
        .iter()
        .map(|r| metric_sum(metrics, &format!("alto_requests_total{{resource=\"{r}\"}}")))
        .sum();
    (metric_sum(metrics, "alto_requests_total{"), arrivals)
}

/// Requests the PID Heads now listed by the ALTO server at `directory_url` have answered
/// (announces, scrapes, failures), from their `/metrics`.
pub async fn head_requests(directory_url: &str) -> u64 {
    let Ok(client) = alto_client::AltoClient::new(directory_url) else {
        return 0;
    };
    let Ok(heads) = client.head_directory().await else {
        return 0;
    };
    let http = http_client(ClientOptions {
        connect_timeout: Some(SCRAPE_TIMEOUT),
        ..ClientOptions::default()
    });
    let mut sum = 0;
    for (tracker, _) in heads.heads().values() {
        let url = alto_model::pidhead::sibling(tracker, "/metrics");
        if let Ok(text) = scrape(&http, &url).await {
            sum += [
                "tracker_announces_total",
                "tracker_scrapes_total",
                "tracker_failures_total",
            ]
            .iter()
            .map(|m| metric_sum(&text, &format!("{m} ")))
            .sum::<u64>();
        }
    }
    sum
}

/// The body of `GET url`, within [`SCRAPE_TIMEOUT`].
async fn scrape(http: &alto_web::client::HttpClient, url: &str) -> anyhow::Result<String> {
    let exchange = async {
        let req = http::Request::get(url).body(Full::default())?;
        let resp = http.request(req).await?;
        anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, exchange).await?
}

/// The sum of every metric line starting with `prefix`.
pub fn metric_sum(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The ALTO server's counters, as `/metrics` shows them.
pub async fn alto_metrics(alto: &alto_server::Running) -> String {
    let snap = alto.app.snapshot();
    let mut text = alto.app.metrics().render(snap.base());
    alto.app.heads().render(&mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE alto_requests_total counter\n\
        alto_requests_total{resource=\"directory\"} 4\n\
        alto_requests_total{resource=\"pid-head-join\"} 3\n\
        alto_requests_total{resource=\"costmap\"} 10\n\
        alto_pidhead_elections_total 2\n";

    #[test]
    fn arrivals_are_directory_reads_and_joins() {
        assert_eq!(alto_requests(TEXT), (17, 7));
        assert_eq!(metric_sum(TEXT, "alto_pidhead_elections_total"), 2);
        assert_eq!(metric_sum(TEXT, "missing"), 0);
    }
}
