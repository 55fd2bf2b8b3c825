//! The serving shells' source of randomness: one SplitMix64 per thread, seeded from the
//! std hasher's random keys, handed to the tracker's core (which takes its randomness in, so
//! that its tests can fix it).

use alto_locality::rank::SplitMix64;
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<SplitMix64> = RefCell::new(SplitMix64(
        std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::thread::current().id(),
        ),
    ));
}

/// Runs `f` with this thread's generator.
pub(crate) fn with_rng<T>(f: impl FnOnce(&mut SplitMix64) -> T) -> T {
    RNG.with_borrow_mut(f)
}
