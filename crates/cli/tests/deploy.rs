//! `x402 deploy` and `x402 status` run as a user runs them (the built binary), against a real anvil spawned by
//! each test: fresh deploys checked through the bindings, the no-op re-run, resuming after kill -9, drift made
//! behind the tool's back, the base-sepolia preset, and every bad input giving a one-line error and no record.

// Test code: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy::node_bindings::AnvilInstance;
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use x402_bindings::{
    PaymentChannel, RevenueSplitter, Subscription, TestStablecoin, ToolRegistry, X402Payment,
};

mod common;
use common::*;

#[tokio::test]
async fn deploys_everything_and_a_second_run_is_a_no_op() {
    let anvil = anvil().spawn();
    let scratch = Scratch::new();
    let first = assert_success(&deploy(&anvil, &scratch, "local", &[]));
    assert_eq!(first["transactionsSent"], 16);

    let record = scratch.record("local");
    let provider = provider(&anvil);
    let deployer = anvil.addresses()[0];
    assert_eq!(record["chainId"], 31337);
    assert_eq!(record["deployer"].as_str().unwrap().parse::<Address>().unwrap(), deployer);
    assert_eq!(record["gitCommit"].as_str().unwrap().len(), 40);
    assert!(
        record["steps"].as_array().unwrap().iter().all(|s| s["state"] == "done" && s.get("raw").is_none())
    );
    let token: Address = record["token"]["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(record["token"]["testToken"], true);

    // Every proxy answers through its bindings, runs the recorded implementation and is wired.
    for contract in
        ["X402Payment", "RevenueSplitter", "ToolRegistry", "CreditSystem", "PaymentChannel", "Subscription"]
    {
        let proxy = address_of(&record, contract, "proxy");
        let slot = provider.get_storage_at(proxy, IMPLEMENTATION_SLOT.into()).await.unwrap();
        assert_eq!(
            Address::from_word(slot.into()),
            address_of(&record, contract, "implementation"),
            "{contract}"
        );
        let code = provider.get_code_at(address_of(&record, contract, "implementation")).await.unwrap();
        assert_eq!(
            record["contracts"][contract]["implementation"]["codeHash"].as_str().unwrap(),
            keccak256(&code).to_string()
        );
    }
    let payment = X402Payment::new(address_of(&record, "X402Payment", "proxy"), provider.clone());
    assert!(payment.isTokenAllowed(token).call().await.unwrap());
    assert_eq!(payment.refundWindow().call().await.unwrap(), 600);
    let registry = ToolRegistry::new(address_of(&record, "ToolRegistry", "proxy"), provider.clone());
    assert_eq!(registry.creditSystem().call().await.unwrap(), address_of(&record, "CreditSystem", "proxy"));
    assert_eq!(registry.platformFeeBps().call().await.unwrap(), 2000);
    let splitter = RevenueSplitter::new(address_of(&record, "RevenueSplitter", "proxy"), provider.clone());
    assert_eq!(splitter.registry().call().await.unwrap(), *registry.address());
    assert!(splitter.hasRole(keccak256("DISTRIBUTOR_ROLE"), *registry.address()).call().await.unwrap());
    let channels = PaymentChannel::new(address_of(&record, "PaymentChannel", "proxy"), provider.clone());
    assert!(channels.isTokenAllowed(token).call().await.unwrap());
    let subscriptions = Subscription::new(address_of(&record, "Subscription", "proxy"), provider.clone());
    assert_eq!(subscriptions.keeperRewardBps().call().await.unwrap(), U256::from(10));
    assert_eq!(TestStablecoin::new(token, provider.clone()).decimals().call().await.unwrap(), 6);

    let nonce = provider.get_transaction_count(deployer).await.unwrap();
    assert_eq!(nonce, 16);
    let started = Instant::now();
    let second = assert_success(&deploy(&anvil, &scratch, "local", &[]));
    let elapsed = started.elapsed();
    assert_eq!(second["transactionsSent"], 0);
    assert!(second["summary"].as_str().unwrap().starts_with("nothing to deploy"));
    assert_eq!(provider.get_transaction_count(deployer).await.unwrap(), nonce, "no transaction sent");
    eprintln!("no-op re-run took {elapsed:?}");

    let clean = status(&anvil, &scratch, "local");
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stdout));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("no drift"));
}

#[tokio::test]
async fn hands_roles_to_the_admin_and_grants_the_keeper() {
    let anvil = anvil().spawn();
    let scratch = Scratch::new();
    let (deployer, admin, keeper) = (anvil.addresses()[0], anvil.addresses()[1], anvil.addresses()[2]);
    let config = scratch.dir().join("settings.toml");
    std::fs::write(&config, format!("admin = \"{admin}\"\nkeeper = \"{keeper}\"\nplatform_fee_bps = 1500\n"))
        .unwrap();
    let output = deploy(&anvil, &scratch, "local", &["--config", config.to_str().unwrap()]);
    let summary = assert_success(&output);
    // 16 + the keeper's role + 7 grants and 7 renounces.
    assert_eq!(summary["transactionsSent"], 31);
    let record = scratch.record("local");
    let provider = provider(&anvil);
    for contract in
        ["X402Payment", "RevenueSplitter", "ToolRegistry", "CreditSystem", "PaymentChannel", "Subscription"]
    {
        let any = X402Payment::new(address_of(&record, contract, "proxy"), provider.clone());
        assert!(any.hasRole(B256::ZERO, admin).call().await.unwrap(), "{contract}: admin");
        assert!(!any.hasRole(B256::ZERO, deployer).call().await.unwrap(), "{contract}: deployer kept admin");
        assert!(
            !any.hasRole(keccak256("UPGRADER_ROLE"), deployer).call().await.unwrap(),
            "{contract}: upgrader"
        );
    }
    let splitter = RevenueSplitter::new(address_of(&record, "RevenueSplitter", "proxy"), provider.clone());
    assert!(splitter.hasRole(keccak256("DISTRIBUTOR_ROLE"), keeper).call().await.unwrap());
    assert_eq!(splitter.platformTreasury().call().await.unwrap(), admin);
    assert!(status(&anvil, &scratch, "local").status.success());

    // The same record with other settings is refused rather than silently mixed.
    std::fs::write(&config, format!("admin = \"{admin}\"\nplatform_fee_bps = 1000\n")).unwrap();
    assert_error(
        &deploy(&anvil, &scratch, "local", &["--config", config.to_str().unwrap()]),
        "settings differ",
    );
}

#[tokio::test]
async fn resumes_after_kill_9_without_duplicating_anything() {
    // One block per second, so the deployment is still running when it is killed.
    let anvil = anvil().block_time(1).spawn();
    let scratch = Scratch::new();
    let rpc = anvil.endpoint();
    let dir = scratch.dir().to_str().unwrap().to_owned();
    let mut child = x402(
        &["deploy", "--network", "local", "--rpc-url", &rpc, "--deployments-dir", &dir],
        Some(&key_hex(&anvil, 0)),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read_to_string(scratch.record_path("local"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .map(|r| r["steps"].as_array().unwrap().iter().filter(|s| s["state"] == "done").count())
            .unwrap_or(0);
        if done >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the deployment made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let interrupted = scratch.record("local");
    let steps_before = interrupted["steps"].as_array().unwrap().len();
    assert!(steps_before < 16, "killed before the end");

    let provider = provider(&anvil);
    provider.raw_request::<_, ()>("evm_setAutomine".into(), (true,)).await.unwrap();
    let summary = assert_success(&deploy(&anvil, &scratch, "local", &[]));
    let record = scratch.record("local");
    let steps = record["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 16);
    assert!(steps.iter().all(|s| s["state"] == "done"));
    // Every transaction the deployer ever sent is one recorded step: nothing was sent twice.
    let deployer = anvil.addresses()[0];
    assert_eq!(provider.get_transaction_count(deployer).await.unwrap(), 16);
    let mut nonces: Vec<u64> = steps.iter().map(|s| s["nonce"].as_u64().unwrap()).collect();
    nonces.sort_unstable();
    assert_eq!(nonces, (0..16).collect::<Vec<_>>());
    assert!(summary["transactionsSent"].as_u64().unwrap() <= 16 - 3);
    assert!(status(&anvil, &scratch, "local").status.success());
}

#[tokio::test]
async fn status_detects_drift_made_behind_its_back() {
    let anvil = anvil().spawn();
    let scratch = Scratch::new();
    assert_success(&deploy(&anvil, &scratch, "local", &[]));
    let record = scratch.record("local");
    let provider = provider(&anvil);

    // Someone swaps X402Payment's implementation slot and pauses the PaymentChannel.
    let proxy = address_of(&record, "X402Payment", "proxy");
    let other = address_of(&record, "CreditSystem", "implementation");
    provider
        .raw_request::<_, bool>("anvil_setStorageAt".into(), (proxy, IMPLEMENTATION_SLOT, other.into_word()))
        .await
        .unwrap();
    let channels = PaymentChannel::new(address_of(&record, "PaymentChannel", "proxy"), provider.clone());
    channels.pause().send().await.unwrap().get_receipt().await.unwrap();

    let output = status(&anvil, &scratch, "local");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("DRIFT")
            && l.contains("X402Payment")
            && l.contains("implementation slot")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("DRIFT") && l.contains("PaymentChannel") && l.contains("paused")),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("ok") && l.contains("Subscription")), "{stdout}");
}

#[tokio::test]
async fn base_sepolia_preset_uses_the_usdc_at_its_address() {
    let anvil = anvil().chain_id(84_532).spawn();
    let scratch = Scratch::new();
    let provider = provider(&anvil);
    // A TestStablecoin's code placed where Base Sepolia's USDC lives.
    let token = TestStablecoin::deploy(
        provider.clone(),
        "USDC".into(),
        "USDC".into(),
        "2".into(),
        anvil.addresses()[0],
    )
    .await
    .unwrap();
    let code = provider.get_code_at(*token.address()).await.unwrap();
    provider.raw_request::<_, ()>("anvil_setCode".into(), (BASE_SEPOLIA_USDC, code)).await.unwrap();

    let summary = assert_success(&deploy(&anvil, &scratch, "base-sepolia", &[]));
    assert_eq!(summary["transactionsSent"], 15, "no test token on a preset");
    let record = scratch.record("base-sepolia");
    assert_eq!(record["network"], "base-sepolia");
    assert_eq!(record["token"]["testToken"], false);
    assert_eq!(record["token"]["address"].as_str().unwrap().parse::<Address>().unwrap(), BASE_SEPOLIA_USDC);
    let payment = X402Payment::new(address_of(&record, "X402Payment", "proxy"), provider.clone());
    assert!(payment.isTokenAllowed(BASE_SEPOLIA_USDC).call().await.unwrap());
    assert!(status(&anvil, &scratch, "base-sepolia").status.success());
}

#[tokio::test]
async fn deploys_with_a_keystore_and_its_password_from_the_environment() {
    let anvil = anvil().spawn();
    let scratch = Scratch::new();
    let keystores = scratch.dir().join("keys");
    let imported = Command::new(tools("cast"))
        .args(["wallet", "import", "deployer", "--keystore-dir", keystores.to_str().unwrap()])
        .args(["--private-key", &key_hex(&anvil, 3), "--unsafe-password", "correct horse"])
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let keystore = keystores.join("deployer");
    let rpc = anvil.endpoint();
    let dir = scratch.dir().to_str().unwrap().to_owned();
    let args = [
        "deploy",
        "--network",
        "local",
        "--rpc-url",
        &rpc,
        "--deployments-dir",
        &dir,
        "--keystore",
        keystore.to_str().unwrap(),
    ];

    let mut wrong = x402(&args, None);
    wrong.env("X402_KEYSTORE_PASSWORD", "wrong");
    assert_error(&run(wrong), "cannot decrypt keystore");
    assert_error(&run(x402(&args, None)), "set X402_KEYSTORE_PASSWORD");
    let mut right = x402(&args, None);
    right.env("X402_KEYSTORE_PASSWORD", "correct horse");
    assert_success(&run(right));
    let record = scratch.record("local");
    assert_eq!(record["deployer"].as_str().unwrap().parse::<Address>().unwrap(), anvil.addresses()[3]);
}

#[tokio::test]
async fn bad_input_gets_one_line_and_no_record() {
    let anvil = anvil().spawn();
    let scratch = Scratch::new();
    let rpc = anvil.endpoint();
    let dir = scratch.dir().to_str().unwrap().to_owned();
    let key = key_hex(&anvil, 0);
    let local =
        ["deploy", "--network", "local", "--rpc-url", rpc.as_str(), "--deployments-dir", dir.as_str()];

    assert_error(
        &run(x402(
            &["deploy", "--network", "local", "--rpc-url", "http://127.0.0.1:1", "--deployments-dir", &dir],
            Some(&key),
        )),
        "cannot reach RPC http://127.0.0.1:1",
    );
    let sepolia =
        ["deploy", "--network", "base-sepolia", "--rpc-url", rpc.as_str(), "--deployments-dir", dir.as_str()];
    assert_error(&run(x402(&sepolia, Some(&key))), "network base-sepolia is chain 84532");
    assert_error(
        &run(x402(&["deploy", "--network", "base", "--deployments-dir", &dir], Some(&key))),
        "no RPC URL for base",
    );
    assert_error(&run(x402(&local, None)), "no deployer key");
    assert_error(&run(x402(&local, Some("0x1234"))), "X402_PRIVATE_KEY is not a 32-byte hex private key");
    let unfunded = format!("0x{}", alloy::hex::encode(PrivateKeySigner::random().to_bytes()));
    assert_error(&run(x402(&local, Some(&unfunded))), "holds 0 wei");

    let config = scratch.dir().join("bad.toml");
    std::fs::write(&config, "admn = \"0x0000000000000000000000000000000000000001\"\n").unwrap();
    let mut with_config = local.to_vec();
    with_config.extend(["--config", config.to_str().unwrap()]);
    assert_error(&run(x402(&with_config, Some(&key))), "unknown field `admn`");
    std::fs::write(&config, "platform_fee_bps = 9000\n").unwrap();
    assert_error(&run(x402(&with_config, Some(&key))), "platform_fee_bps 9000 is above 3000");

    // Presets: no token at the USDC address, then a contract there that is not an EIP-3009 token.
    let preset = anvil_preset();
    let prpc = preset.endpoint();
    let pargs = [
        "deploy",
        "--network",
        "base-sepolia",
        "--rpc-url",
        prpc.as_str(),
        "--deployments-dir",
        dir.as_str(),
    ];
    let pkey = key_hex(&preset, 0);
    assert_error(&run(x402(&pargs, Some(&pkey))), "no contract at the base-sepolia USDC address");
    let provider = provider(&preset);
    provider
        .raw_request::<_, ()>(
            "anvil_setCode".into(),
            (BASE_SEPOLIA_USDC, alloy::primitives::Bytes::from_static(&[0x60, 0x00, 0x80, 0xfd])),
        )
        .await
        .unwrap();
    assert_error(&run(x402(&pargs, Some(&pkey))), "does not implement EIP-3009");

    assert!(!scratch.record_path("local").exists(), "no partial record");
    assert!(!scratch.record_path("base-sepolia").exists(), "no partial record");
    let none =
        run(x402(&["status", "--network", "local", "--rpc-url", &rpc, "--deployments-dir", &dir], None));
    assert_error(&none, "no record at");
}

fn anvil_preset() -> AnvilInstance {
    anvil().chain_id(84_532).spawn()
}

#[tokio::test]
async fn create2_salt_gives_the_same_addresses_on_two_chains() {
    let local = anvil().spawn();
    let sepolia = anvil_preset();
    let local_provider = provider(&local);
    let provider = provider(&sepolia);
    let token = TestStablecoin::deploy(
        provider.clone(),
        "USDC".into(),
        "USDC".into(),
        "2".into(),
        sepolia.addresses()[0],
    )
    .await
    .unwrap();
    let code = provider.get_code_at(*token.address()).await.unwrap();
    provider.raw_request::<_, ()>("anvil_setCode".into(), (BASE_SEPOLIA_USDC, code)).await.unwrap();

    let salt = format!("{}", keccak256("x402 v1"));
    let (a, b) = (Scratch::new(), Scratch::new());
    // Both deployments hand every role to the same admin, as a multisig would hold them on each chain.
    for scratch in [&a, &b] {
        std::fs::write(
            scratch.dir().join("settings.toml"),
            format!("admin = \"{}\"\n", local.addresses()[1]),
        )
        .unwrap();
    }
    let config_a = a.dir().join("settings.toml");
    let config_b = b.dir().join("settings.toml");
    assert_success(&deploy(
        &local,
        &a,
        "local",
        &["--create2-salt", &salt, "--config", config_a.to_str().unwrap()],
    ));
    assert_success(&deploy(
        &sepolia,
        &b,
        "base-sepolia",
        &["--create2-salt", &salt, "--config", config_b.to_str().unwrap()],
    ));
    let (ra, rb) = (a.record("local"), b.record("base-sepolia"));
    for contract in
        ["X402Payment", "RevenueSplitter", "ToolRegistry", "CreditSystem", "PaymentChannel", "Subscription"]
    {
        assert_eq!(
            address_of(&ra, contract, "proxy"),
            address_of(&rb, contract, "proxy"),
            "{contract} proxy"
        );
        assert_eq!(
            address_of(&ra, contract, "implementation"),
            address_of(&rb, contract, "implementation"),
            "{contract} implementation"
        );
    }
    // Each chain's own token is allowed, and every role sits with the admin, none with the deployer.
    let payment = X402Payment::new(address_of(&rb, "X402Payment", "proxy"), provider.clone());
    assert!(payment.isTokenAllowed(BASE_SEPOLIA_USDC).call().await.unwrap());
    assert!(!payment.hasRole(B256::ZERO, sepolia.addresses()[0]).call().await.unwrap());
    assert!(payment.hasRole(B256::ZERO, local.addresses()[1]).call().await.unwrap());
    assert!(status(&local, &a, "local").status.success());
    assert!(status(&sepolia, &b, "base-sepolia").status.success());

    // Re-running is a no-op; without the salt the record is refused rather than mixed.
    let again = assert_success(&deploy(
        &local,
        &a,
        "local",
        &["--create2-salt", &salt, "--config", config_a.to_str().unwrap()],
    ));
    assert_eq!(again["transactionsSent"], 0);
    assert_error(&deploy(&local, &a, "local", &["--config", config_a.to_str().unwrap()]), "CREATE2 salt");

    // A lost record: the contracts are found at their addresses instead of being deployed twice.
    std::fs::remove_file(a.record_path("local")).unwrap();
    let nonce = local_provider.get_transaction_count(local.addresses()[0]).await.unwrap();
    let rebuilt = assert_success(&deploy(
        &local,
        &a,
        "local",
        &["--create2-salt", &salt, "--config", config_a.to_str().unwrap()],
    ));
    let after = local_provider.get_transaction_count(local.addresses()[0]).await.unwrap();
    assert_eq!(
        address_of(&a.record("local"), "Subscription", "proxy"),
        address_of(&ra, "Subscription", "proxy")
    );
    assert_eq!(
        after - nonce,
        rebuilt["transactionsSent"].as_u64().unwrap(),
        "only the non-creation steps were sent"
    );
}
