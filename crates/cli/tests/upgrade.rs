//! `x402 upgrade` against a real anvil: a compatible V2 (test/mocks/UpgradesV2.sol) keeps the proxy's state and
//! is recorded; an implementation that breaks X402Payment's ERC-7201 layout (test/mocks/LayoutBreakV2.sol) is
//! refused before anything is sent; so are an unknown contract and a key without UPGRADER_ROLE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use alloy::primitives::{Address, keccak256};
use alloy::providers::Provider;
use x402_bindings::{InvoiceStatus, X402Payment};

mod common;
use common::*;

fn artifact(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/artifacts/{name}.json"))
        .to_str()
        .unwrap()
        .to_owned()
}

fn upgrade(
    anvil: &alloy::node_bindings::AnvilInstance,
    scratch: &Scratch,
    extra: &[&str],
) -> std::process::Output {
    let rpc = anvil.endpoint();
    let dir = scratch.dir().to_str().unwrap().to_owned();
    let mut args = vec!["upgrade"];
    args.extend_from_slice(extra);
    args.extend(["--network", "local", "--rpc-url", &rpc, "--deployments-dir", &dir]);
    run(x402(&args, Some(&key_hex(anvil, 0))))
}

/// `cast` for the V2 mocks' own functions, which no binding (and no hand-written ABI) describes.
fn cast(args: &[&str]) -> String {
    let output = Command::new(tools("cast")).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn upgrades_to_a_compatible_v2_keeping_state_and_recording_it() {
    let anvil = anvil().spawn();
    let scratch = Scratch::new();
    assert_success(&deploy(&anvil, &scratch, "local", &[]));
    let record = scratch.record("local");
    let proxy = address_of(&record, "X402Payment", "proxy");
    let old_implementation = address_of(&record, "X402Payment", "implementation");
    let provider = provider(&anvil);
    let payment = X402Payment::new(proxy, provider.clone());
    let token: Address = record["token"]["address"].as_str().unwrap().parse().unwrap();

    // Live state before the upgrade: an invoice.
    let salt = keccak256("order-1");
    let expires =
        provider.get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp + 3600;
    let amount = alloy::primitives::Uint::<96, 2>::from(1_000_000u64);
    payment.createInvoice(salt, token, amount, expires).send().await.unwrap().get_receipt().await.unwrap();
    let invoice_id = payment.invoiceIdOf(anvil.addresses()[0], salt).call().await.unwrap();

    let reinit = cast(&["calldata", "initializeV2(string)", "v2"]);
    let v2 = artifact("X402PaymentV2");
    let output =
        upgrade(&anvil, &scratch, &["X402Payment", "--implementation-artifact", &v2, "--call-data", &reinit]);
    assert_success(&output);

    let slot = provider.get_storage_at(proxy, IMPLEMENTATION_SLOT.into()).await.unwrap();
    let new_implementation = Address::from_word(slot.into());
    assert_ne!(new_implementation, old_implementation);
    let note = cast(&["call", &proxy.to_string(), "releaseNote()(string)", "--rpc-url", &anvil.endpoint()]);
    assert_eq!(note, "\"v2\"");
    let invoice = payment.getInvoice(invoice_id).call().await.unwrap();
    assert_eq!(InvoiceStatus::try_from(invoice.status).unwrap(), InvoiceStatus::Pending);
    assert_eq!(invoice.amount, amount);
    assert!(payment.isTokenAllowed(token).call().await.unwrap());

    let record = scratch.record("local");
    assert_eq!(address_of(&record, "X402Payment", "implementation"), new_implementation);
    let upgrades = record["upgrades"].as_array().unwrap();
    assert_eq!(upgrades.len(), 1);
    assert_eq!(upgrades[0]["contract"], "X402Payment");
    assert_eq!(upgrades[0]["from"].as_str().unwrap().parse::<Address>().unwrap(), old_implementation);
    assert_ne!(upgrades[0]["block"], 0);
    assert!(record["contracts"]["X402Payment"]["layout"]["x402.storage.ReleaseNoteV2"].is_object());
    assert!(status(&anvil, &scratch, "local").status.success(), "the record follows the upgrade");

    // The same upgrade again sends nothing.
    let nonce = provider.get_transaction_count(anvil.addresses()[0]).await.unwrap();
    let again =
        upgrade(&anvil, &scratch, &["X402Payment", "--implementation-artifact", &v2, "--call-data", &reinit]);
    assert_success(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to upgrade"));
    assert_eq!(provider.get_transaction_count(anvil.addresses()[0]).await.unwrap(), nonce);
}

#[tokio::test]
async fn refuses_an_incompatible_layout_before_sending_anything() {
    let anvil = anvil().spawn();
    let scratch = Scratch::new();
    assert_success(&deploy(&anvil, &scratch, "local", &[]));
    let provider = provider(&anvil);
    let nonce = provider.get_transaction_count(anvil.addresses()[0]).await.unwrap();
    let before = std::fs::read_to_string(scratch.record_path("local")).unwrap();

    let broken = artifact("X402PaymentLayoutBreakV2");
    let output = upgrade(&anvil, &scratch, &["X402Payment", "--implementation-artifact", &broken]);
    assert_error(&output, "storage layout incompatible: namespace x402.storage.X402Payment: member 0 was");
    assert_eq!(provider.get_transaction_count(anvil.addresses()[0]).await.unwrap(), nonce, "nothing sent");
    assert_eq!(std::fs::read_to_string(scratch.record_path("local")).unwrap(), before, "record untouched");
    // An implementation of another contract is refused too: ToolRegistry's namespace would be gone.
    let v2 = artifact("X402PaymentV2");
    assert_error(
        &upgrade(&anvil, &scratch, &["ToolRegistry", "--implementation-artifact", &v2]),
        "namespace x402.storage.ToolRegistry is gone",
    );
}

#[tokio::test]
async fn refuses_unknown_contracts_and_keys_without_the_upgrader_role() {
    let anvil = anvil().spawn();
    let scratch = Scratch::new();
    let config = scratch.dir().join("settings.toml");
    std::fs::write(&config, format!("admin = \"{}\"\n", anvil.addresses()[1])).unwrap();
    assert_success(&deploy(&anvil, &scratch, "local", &["--config", config.to_str().unwrap()]));

    assert_error(
        &upgrade(&anvil, &scratch, &["Nope"]),
        "unknown contract \"Nope\"; expected one of X402Payment",
    );
    // The bundled implementation is what was just deployed: nothing to do, whoever asks.
    let same = upgrade(&anvil, &scratch, &["PaymentChannel"]);
    assert_success(&same);
    assert!(
        String::from_utf8_lossy(&same.stdout)
            .contains("nothing to upgrade: PaymentChannel already runs this code")
    );
    // The admin (a multisig in production) holds UPGRADER_ROLE; the deployer gave it up.
    let v2 = artifact("X402PaymentV2");
    assert_error(
        &upgrade(&anvil, &scratch, &["X402Payment", "--implementation-artifact", &v2]),
        "lacks X402Payment's UPGRADER_ROLE",
    );
}

/// The chain and record the `x402` binary of release fa118ec left (tests/fixtures/fa118ec, see its README):
/// credit spends pending under the old split rule, a past-due subscription of a subscriber without funds.
fn deployed_at_fa118ec(scratch: &Scratch) -> alloy::node_bindings::AnvilInstance {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fa118ec");
    std::fs::copy(fixture.join("local.json"), scratch.record_path("local")).unwrap();
    anvil().arg("--load-state").arg(fixture.join("anvil-state.json")).spawn()
}

#[tokio::test]
async fn upgrades_the_deployed_release_to_the_bundled_contracts_in_order() {
    use x402_bindings::{CreditSystem, Subscription, ToolRegistry};
    let scratch = Scratch::new();
    let anvil = deployed_at_fa118ec(&scratch);
    assert!(status(&anvil, &scratch, "local").status.success(), "the fixture matches its record");
    let record = scratch.record("local");
    let provider = provider(&anvil);
    let nonce = provider.get_transaction_count(anvil.addresses()[0]).await.unwrap();

    // The new CreditSystem settles through a registry function only the new ToolRegistry has.
    assert_error(&upgrade(&anvil, &scratch, &["CreditSystem"]), "upgrade ToolRegistry first");
    assert_eq!(provider.get_transaction_count(anvil.addresses()[0]).await.unwrap(), nonce, "nothing sent");
    for contract in ["ToolRegistry", "CreditSystem", "Subscription"] {
        let output = upgrade(&anvil, &scratch, &[contract]);
        assert_success(&output);
        assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("upgraded {contract}")));
    }
    assert!(status(&anvil, &scratch, "local").status.success(), "the record follows the upgrades");

    // The old code's three pending credit calls of 1 USDC settle at the fee in force (20%), next to the two
    // direct calls it split at once.
    let credits = CreditSystem::new(address_of(&record, "CreditSystem", "proxy"), provider.clone());
    let registry = ToolRegistry::new(address_of(&record, "ToolRegistry", "proxy"), provider.clone());
    let token: Address = record["token"]["address"].as_str().unwrap().parse().unwrap();
    let terms = credits.toolTerms(alloy::primitives::U256::from(1)).call().await.unwrap();
    assert_eq!(terms.pendingCalls, alloy::primitives::U256::from(3));
    let tool = vec![alloy::primitives::U256::from(1)];
    credits.settle(token, tool).send().await.unwrap().get_receipt().await.unwrap();
    let stats = registry.getToolStats(alloy::primitives::U256::from(1)).call().await.unwrap();
    assert_eq!(stats.calls, 5);
    assert_eq!(stats.pendingDeveloper, alloy::primitives::Uint::<96, 2>::from(4_000_000u64));
    assert_eq!(stats.pendingPlatform, alloy::primitives::Uint::<96, 2>::from(1_000_000u64));

    // The unfunded subscriber (anvil key 5) cannot put its past-due subscription back on the due list.
    let subscriptions = Subscription::new(address_of(&record, "Subscription", "proxy"), provider.clone());
    let broke = anvil.addresses()[5];
    let refusal =
        subscriptions.reactivate(alloy::primitives::U256::from(2)).from(broke).call().await.unwrap_err();
    let decoded = refusal.as_decoded_interface_error::<Subscription::SubscriptionErrors>();
    assert!(matches!(decoded, Some(Subscription::SubscriptionErrors::SubscriptionUnfunded(_))), "{refusal}");
}
