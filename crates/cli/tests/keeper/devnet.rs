//! `x402 devnet` on a chain that official v1 clients can pay.

use crate::common::x402;

/// Finding 9, the devnet: `x402 devnet --chain-id 84532` runs the whole loop on a local chain that official v1
/// clients can pay, and shows a v1 payment taken and settled with the rest.
#[test]
fn the_devnet_on_chain_id_84532_takes_a_v1_payment() {
    let mut command = x402(
        &[
            "devnet",
            "--smoke",
            "--port",
            "0",
            "--keeper-listen",
            "127.0.0.1:0",
            "--chain-id",
            "84532",
            "--payments",
            "20",
            "--subscriptions",
            "1",
            "--periods",
            "1",
        ],
        None,
    );
    command.env("X402_ANVIL", crate::common::tools("anvil"));
    let output = crate::common::run(command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("(chain 84532, x402 v1 network base-sepolia)"), "{stdout}");
    assert!(stdout.contains("v1 payment  network base-sepolia: HTTP 202 (queued)"), "{stdout}");
    assert!(stdout.contains("settled     21 payments"), "{stdout}");
    assert!(stdout.contains("smoke       all balances and counts as expected"), "{stdout}");
}
