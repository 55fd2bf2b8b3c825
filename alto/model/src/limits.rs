//! What one query may cost a server: every POST service of RFC 7285 (§11.3.1, §11.3.2,
//! §11.4.1, §11.5.1) answers in time and memory proportional to the pairs it computes and
//! the bytes it writes, and both are bounded here, for the ALTO server and a PID Head alike.
//!
//! An endpoint cost query of 1,850 sources by 1,850 destinations fits in 61 KB and asks for
//! 3.4 million pairs (70 MB of answer): without a bound a small request buys a large answer.
//! A query over the bound is refused before any cost is computed, with `E_INVALID_FIELD_VALUE`
//! (§8.5.2) naming the list at fault and, in `value`, the count asked for and the limit.
//! An answer is encoded into a buffer that refuses to grow past `max_answer_bytes`, so even a
//! query within the pair bound cannot make the server buffer more.

use crate::error::AltoError;
use serde::Serialize;
use std::io::Write;

/// The bounds of one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Source-destination pairs one query may ask for (endpoints for the endpoint cost
    /// service, PIDs for the filtered cost map).
    pub max_pairs: usize,
    /// Bytes of one answer.
    pub max_answer_bytes: usize,
}

impl QueryLimits {
    /// 100,000 pairs (a peer list of 200 candidates is 200) and 4 MiB: a full cost map is a
    /// GET resource, cached and revalidated, not a query.
    pub const DEFAULT: QueryLimits = QueryLimits {
        max_pairs: 100_000,
        max_answer_bytes: 4 << 20,
    };

    /// Admits a query for `srcs` x `dsts` pairs; `field` names the lists in the error.
    pub fn admit_pairs(&self, field: &str, srcs: usize, dsts: usize) -> Result<(), AltoError> {
        let pairs = srcs.saturating_mul(dsts);
        if pairs <= self.max_pairs {
            return Ok(());
        }
        Err(AltoError::invalid_value(
            field,
            format!(
                "{srcs} sources x {dsts} destinations = {pairs} pairs; this server answers \
                 at most {} pairs per request",
                self.max_pairs
            ),
        ))
    }

    /// `v` as JSON, or, past `max_answer_bytes`, the error for `field` without the rest of
    /// the answer ever being made.
    pub fn encode<T: Serialize>(&self, field: &str, v: &T) -> Result<Vec<u8>, AnswerError> {
        let mut out = Bounded {
            buf: Vec::new(),
            max: self.max_answer_bytes,
        };
        match serde_json::to_writer(&mut out, v) {
            Ok(()) => Ok(out.buf),
            Err(e) if e.is_io() => Err(AnswerError::Alto(AltoError::invalid_value(
                field,
                format!(
                    "the answer exceeds {} bytes, the most this server sends; ask for fewer",
                    self.max_answer_bytes
                ),
            ))),
            Err(e) => Err(AnswerError::Encode(e)),
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a query got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The request's fault, answered with its §8.5.2 error.
    #[error(transparent)]
    Alto(#[from] AltoError),
    /// The server's fault: the answer did not encode.
    #[error("the answer does not encode: {0}")]
    Encode(serde_json::Error),
}

/// A buffer that fails a write past `max` bytes.
struct Bounded {
    buf: Vec<u8>,
    max: usize,
}

impl Write for Bounded {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.max {
            return Err(std::io::Error::other("answer limit"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn pairs_over_the_bound_are_refused_with_the_counts() {
        let l = QueryLimits {
            max_pairs: 100,
            max_answer_bytes: 1000,
        };
        assert!(l.admit_pairs("endpoints", 10, 10).is_ok());
        let e = l.admit_pairs("endpoints", 11, 10).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidFieldValue);
        assert_eq!(e.meta.field.as_deref(), Some("endpoints"));
        let value = e.meta.value.unwrap();
        assert!(
            value.contains("110 pairs") && value.contains("at most 100"),
            "{value}"
        );
        // No overflow on absurd counts.
        assert!(l.admit_pairs("endpoints", usize::MAX, 2).is_err());
    }

    #[test]
    fn an_answer_stops_at_the_byte_bound() {
        let l = QueryLimits {
            max_pairs: 100,
            max_answer_bytes: 64,
        };
        assert_eq!(l.encode("x", &vec![1u8; 10]).unwrap().len(), 21);
        match l.encode("pids", &vec![1u8; 100]) {
            Err(AnswerError::Alto(e)) => {
                assert_eq!(e.meta.field.as_deref(), Some("pids"));
                assert!(e.meta.value.unwrap().contains("exceeds 64 bytes"));
            }
            other => panic!("not refused: {other:?}"),
        }
    }
}
