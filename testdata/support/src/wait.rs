//! Waiting with a deadline for something a test cannot be told about: a tracker's count, a
//! file another process writes. Where a channel or a notification exists, a test awaits it
//! instead; this is for state seen only by looking.

use std::path::PathBuf;
use std::time::Duration;

/// How often [`until`] looks: often enough not to slow a test, rarely enough to cost nothing.
pub const STEP: Duration = Duration::from_millis(100);

/// Waits for `done` to hold, looking every [`STEP`] on tokio's clock; panics after `timeout`
/// with `what` and the text of every file in `logs` (the clients' output, for the reason).
pub async fn until(
    what: &str,
    timeout: Duration,
    logs: &[PathBuf],
    mut done: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}\n{}", dump(logs));
        }
        tokio::time::sleep(STEP).await;
    }
}

/// Every file of `logs` under its name, for a failure message.
pub fn dump(logs: &[PathBuf]) -> String {
    logs.iter()
        .map(|l| {
            format!(
                "--- {}\n{}",
                l.display(),
                std::fs::read_to_string(l).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn until_returns_once_the_condition_holds() {
        let mut n = 0;
        until("three looks", Duration::from_secs(5), &[], || {
            n += 1;
            n == 3
        })
        .await;
        assert_eq!(n, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "tracker unreachable")]
    async fn until_fails_after_the_timeout_with_the_logs() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("client.log");
        std::fs::write(&log, "tracker unreachable").unwrap();
        until("never", 2 * STEP, &[log], || false).await;
    }
}
