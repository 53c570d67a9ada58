//! One network's engine as the facilitator sees it: the keeper context that owns the network's signer, store and
//! batches, and the facilitator's own verifier for it (the reference's validity margin, the token's EIP-712 domain
//! required in the requirements).

use std::sync::Arc;

use x402_keeper::context::Context;
use x402_keeper::intake::Verifier;

use crate::channels::Desk;

/// One network the facilitator settles on.
#[derive(Debug)]
pub struct Engine {
    /// The deployment record's network name (`local`, `base-sepolia`, ...).
    pub name: String,
    /// The keeper engine of the network.
    pub context: Arc<Context>,
    /// The checks `/verify` and `/settle` make.
    pub verifier: Verifier,
    /// The `channel` scheme's vouchers on this network.
    pub desk: Arc<Desk>,
}

impl Engine {
    /// The engine of `context`, whose verifier's margin becomes `verify_margin` seconds, with its voucher desk
    /// running (so this is called within a tokio runtime).
    pub fn new(name: String, context: Arc<Context>, verify_margin: u64) -> Self {
        let verifier = context.verifier.for_facilitator(verify_margin);
        let desk = Desk::start(Arc::clone(&context));
        Self { name, context, verifier, desk }
    }

    /// Whether `network` (a CAIP-2 id or a v1 name) is this engine's.
    pub fn serves(&self, network: &str) -> bool {
        self.verifier.serves(network)
    }
}

/// The engines of every network served.
#[derive(Debug)]
pub struct Engines(Vec<Engine>);

impl Engines {
    /// `engines`, one per network.
    pub fn new(engines: Vec<Engine>) -> Self {
        Self(engines)
    }

    /// The engine serving `network`.
    pub fn find(&self, network: &str) -> Option<&Engine> {
        self.0.iter().find(|engine| engine.serves(network))
    }

    /// Every engine.
    pub fn iter(&self) -> impl Iterator<Item = &Engine> {
        self.0.iter()
    }
}
