//! Gas limits: a transaction asks for its estimate plus [`HEADROOM_PERCENT`], never more than a block holds.

/// Gas limit headroom over the estimate, in percent.
pub const HEADROOM_PERCENT: u64 = 20;

/// `gas` with the headroom.
pub fn headroom(gas: u64) -> u64 {
    gas.saturating_add(gas.saturating_mul(HEADROOM_PERCENT) / 100)
}

/// Whether a call estimated at `gas` fits `limit` with the headroom.
pub fn fits(gas: u64, limit: u64) -> bool {
    headroom(gas) <= limit
}

/// The gas limit to sign for an estimate of `gas` in blocks of `block_limit`: the headroom, cut to fit; `None`
/// when the estimate alone is more than a block holds (a node would refuse it forever).
pub fn limit_for(gas: u64, block_limit: u64) -> Option<u64> {
    (gas <= block_limit).then(|| headroom(gas).min(block_limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_is_cut_to_the_block_and_oversize_calls_are_not_sent() {
        assert_eq!(headroom(100_000), 120_000);
        assert!(fits(100_000, 120_000) && !fits(100_001, 120_000));
        assert_eq!(limit_for(100_000, 30_000_000), Some(120_000));
        assert_eq!(limit_for(29_000_000, 30_000_000), Some(30_000_000));
        assert_eq!(limit_for(30_000_001, 30_000_000), None);
        assert_eq!(headroom(u64::MAX), u64::MAX);
    }
}
