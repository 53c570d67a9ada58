//! The keeper's building blocks. So far: the intake of queued x402 `exact` payments ([`payload`] for the wire
//! format, [`intake`] for the checks a payment must pass before it is accepted for batch settlement).

pub mod intake;
pub mod payload;
