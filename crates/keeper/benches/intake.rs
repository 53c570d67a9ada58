//! Intake throughput: x402 `exact` payment requests parsed from JSON and checked (version, scheme, network,
//! token, amount, recipient, window, EIP-712 signature recovery) on one thread. Run with
//! `cargo bench -p x402-keeper --bench intake`; prints payloads per second.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use alloy::primitives::{Address, U256, address};
use alloy::signers::local::PrivateKeySigner;
use x402_devkit::payments::{ExactTerms, signed_request};
use x402_keeper::intake::{Token, Verifier};
use x402_protocol::facilitator::PaymentRequest;

const PAYLOADS: usize = 20_000;
const NOW: u64 = 1_800_000_000;

fn main() {
    let token = Token {
        address: address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
        name: "USDC".into(),
        version: "2".into(),
    };
    let verifier = Verifier::new(84_532, std::slice::from_ref(&token), 6);
    let merchant = Address::repeat_byte(0x42);
    let payers: Vec<PrivateKeySigner> = (0..16).map(|_| PrivateKeySigner::random()).collect();
    let bodies: Vec<String> = (0..PAYLOADS)
        .map(|i| {
            let payer = &payers[i % payers.len()];
            let terms = ExactTerms {
                to: merchant,
                value: U256::from(10_000u64),
                valid_after: NOW - 60,
                valid_before: NOW + 600,
                nonce: alloy::primitives::keccak256(i.to_be_bytes()),
            };
            signed_request(payer, payer.address(), &token, 84_532, terms).unwrap().to_string()
        })
        .collect();

    let started = Instant::now();
    let mut accepted = 0usize;
    for body in &bodies {
        let request: PaymentRequest = serde_json::from_str(body).unwrap();
        if verifier.check(&request, NOW).is_ok_and(|checked| !checked.needs_wallet_check) {
            accepted += 1;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(accepted, PAYLOADS, "every payload is valid");
    println!(
        "intake: {PAYLOADS} payloads parsed and checked in {:.3}s on one thread: {:.0} payloads/s ({:.1} us each)",
        elapsed.as_secs_f64(),
        PAYLOADS as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / PAYLOADS as f64
    );
}
