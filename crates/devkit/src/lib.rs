//! What a local x402 chain needs around the project's own code, for `x402 devnet`, the tests and the benchmarks:
//!
//! - [`tools`]: the pinned Foundry binaries `bin/setup` installs (anvil, cast);
//! - [`demo`]: anvil accounts funded with the test token, subscriptions, channels, vouchers, chain time, the
//!   gas of a standalone `transferWithAuthorization` to compare with;
//! - [`payments`]: x402 `exact` payments signed with a local key, as clients send them.
//!
//! None of it is used by the daemons: it assumes anvil (`evm_increaseTime`) and a test token its first key owns.

pub mod demo;
pub mod payments;
pub mod tools;
