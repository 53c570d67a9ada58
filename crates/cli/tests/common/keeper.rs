//! What the keeper's integration tests share: a deployed anvil with the demo helpers, an `x402 keeper` process
//! run as the user runs it, HTTP helpers, and the contract wallets (honest and hostile) the wallet tests pay from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use x402_cli::deployer::deploy;
use x402_cli::keeper_settings::contracts_of;

use super::{Scratch, key_hex, x402};
use alloy::network::TransactionBuilder;
use alloy::node_bindings::AnvilInstance;
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use x402_bindings::{PaymentChannel, TestStablecoin};
use x402_devkit::demo::Demo;
use x402_devkit::payments::{ExactTerms, signed_request};

pub const USDC: u64 = 1_000_000;
pub const PERIOD: u64 = 3600;
pub const MERCHANT: usize = 7;
pub const KEEPER: usize = 9;

/// A deployed anvil with the demo helpers.
pub struct Net {
    pub anvil: AnvilInstance,
    pub scratch: Scratch,
    pub demo: Demo,
    pub keys: Vec<PrivateKeySigner>,
}

/// A fresh deployment on `anvil`, made in-process (the deploy command's own tests run the binary), with payers
/// 1 to 5 funded.
pub async fn net(anvil: AnvilInstance) -> Net {
    let scratch = Scratch::new();
    let keys: Vec<PrivateKeySigner> = anvil.keys().iter().map(|k| k.clone().into()).collect();
    let report = deploy::local(&anvil.endpoint(), &keys[0], scratch.dir()).await.unwrap();
    let (contracts, token) = contracts_of(&report.record, &report.path).unwrap();
    let demo = Demo::connect(&anvil.endpoint(), &keys, token, contracts).await.unwrap();
    for payer in &keys[1..=5] {
        demo.mint(payer.address(), U256::from(1_000_000 * USDC)).await.unwrap();
    }
    Net { anvil, scratch, demo, keys }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An `x402 keeper` process.
pub struct KeeperProc {
    pub child: Child,
    pub api: String,
    pub log: std::path::PathBuf,
}

impl KeeperProc {
    pub fn start(net: &Net, data_dir: &Path, interval: u64, log: &str) -> Self {
        Self::start_with(net, data_dir, interval, log, &[])
    }

    /// [`KeeperProc::start`] with more command-line arguments.
    pub fn start_with(net: &Net, data_dir: &Path, interval: u64, log: &str, extra: &[&str]) -> Self {
        Self::start_through(net, &net.anvil.endpoint(), data_dir, interval, log, extra)
    }

    /// Like [`KeeperProc::start_with`], talking to the chain through `rpc` (a relay in front of anvil).
    pub fn start_through(
        net: &Net,
        rpc: &str,
        data_dir: &Path,
        interval: u64,
        log: &str,
        extra: &[&str],
    ) -> Self {
        let port = free_port();
        let dir = net.scratch.dir().to_str().unwrap().to_owned();
        let listen = format!("127.0.0.1:{port}");
        let log_path = net.scratch.dir().join(log);
        let log = std::fs::File::create(&log_path).unwrap();
        // The demo merchant, unless the test chooses whom the keeper settles for.
        let merchant = net.keys[MERCHANT].address().to_string();
        let choose = extra.iter().any(|a| a.starts_with("--merchant") || *a == "--any-merchant");
        let merchant_args: &[&str] = if choose { &[] } else { &["--merchant", &merchant] };
        let child = x402(
            &[
                "keeper",
                "--network",
                "local",
                "--rpc-url",
                rpc,
                "--deployments-dir",
                &dir,
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--listen",
                &listen,
                "--interval",
                &interval.to_string(),
                "--log-format",
                "json",
            ]
            .iter()
            .chain(merchant_args)
            .chain(extra)
            .copied()
            .collect::<Vec<_>>(),
            Some(&key_hex(&net.anvil, KEEPER)),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
        Self { child, api: format!("http://{listen}"), log: log_path }
    }

    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/ready", self.api)).await
                && r.status().is_success()
            {
                return;
            }
            assert!(self.child.try_wait().unwrap().is_none(), "the keeper exited");
            assert!(Instant::now() < deadline, "the keeper did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn post(&self, route: &str, body: &Value) -> (u16, Value) {
        self.post_raw(route, body.to_string()).await
    }

    /// Posts `body` as is, labelled as JSON.
    pub async fn post_raw(&self, route: &str, body: String) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{route}", self.api))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn payment(&self, id: &str) -> Value {
        reqwest::get(format!("{}/payments/{id}", self.api)).await.unwrap().json().await.unwrap()
    }

    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for KeeperProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of {} ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// An HTTP client whose connections come from `ip` (any 127.0.0.0/8 address reaches a keeper on 127.0.0.1).
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
}

pub async fn wait_until<F, Fut>(what: &str, seconds: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Posts `count` payments of distinct values from payers 1..=5 to the merchant; returns (id, payer, value).
pub async fn queue(net: &Net, keeper: &KeeperProc, count: usize, tag: &str) -> Vec<(String, Address, U256)> {
    let now = net.demo.now().await.unwrap();
    let merchant = net.keys[MERCHANT].address();
    let mut out = Vec::new();
    for i in 0..count {
        let payer = &net.keys[1 + i % 5];
        let value = U256::from(1_000 + i as u64);
        let body = net.demo.payment(payer, merchant, value, now, format!("{tag}{i}").as_bytes()).unwrap();
        let (status, answer) = keeper.post("/payments", &body).await;
        assert_eq!(status, 202, "payment {i}: {answer}");
        out.push((answer["id"].as_str().unwrap().to_owned(), payer.address(), value));
    }
    out
}

pub async fn settled_txs(keeper: &KeeperProc, ids: &[(String, Address, U256)]) -> Option<HashSet<String>> {
    let mut txs = HashSet::new();
    for (id, _, _) in ids {
        let record = keeper.payment(id).await;
        if record["status"] != "settled" {
            return None;
        }
        txs.insert(record["transaction"].as_str().unwrap().to_owned());
    }
    Some(txs)
}

pub async fn keeper_nonce(net: &Net) -> u64 {
    net.demo.provider.get_transaction_count(net.keys[KEEPER].address()).await.unwrap()
}

pub fn total(ids: &[(String, Address, U256)]) -> U256 {
    ids.iter().map(|(_, _, v)| *v).sum()
}

/// The token balances of `who`, in order.
pub async fn balances_of(net: &Net, who: &[Address]) -> Vec<U256> {
    let mut out = Vec::new();
    for address in who {
        out.push(net.demo.balance(*address).await.unwrap());
    }
    out
}

/// Whether every one of `answers`' payments reached a final status (settled or failed).
pub async fn all_final(keeper: &KeeperProc, answers: &[&Value]) -> bool {
    for answer in answers {
        let record = keeper.payment(answer["id"].as_str().unwrap()).await;
        if record["status"] == "queued" || record["status"] == "submitted" {
            return false;
        }
    }
    true
}

/// An `x402 keeper` with `settings` (the `[keeper]` table's lines) in its config file, ready.
pub async fn keeper_with(net: &Net, interval: u64, settings: &str) -> KeeperProc {
    let config = net.scratch.dir().join("keeper.toml");
    std::fs::write(&config, format!("[keeper]\n{settings}")).unwrap();
    let data = net.scratch.dir().join("keeper");
    let mut keeper =
        KeeperProc::start_with(net, &data, interval, "keeper.log", &["--config", config.to_str().unwrap()]);
    keeper.wait_ready().await;
    keeper
}

/// Blocks of `limit` gas from the next one on (one is mined, so the latest block shows it).
pub async fn small_blocks(net: &Net, limit: u64) {
    let provider = &net.demo.provider;
    provider.raw_request::<_, bool>("evm_setBlockGasLimit".into(), (U256::from(limit),)).await.unwrap();
    provider.raw_request::<_, String>("evm_mine".into(), ()).await.unwrap();
}

/// An x402 payment of `value` to `to` from `wallet` (a contract), signed by `signer`, valid for an hour from
/// chain time `now`, with a nonce derived from `seed`.
pub fn wallet_payment(
    net: &Net,
    signer: &PrivateKeySigner,
    wallet: Address,
    to: Address,
    value: u64,
    now: u64,
    seed: u8,
) -> Value {
    let terms = ExactTerms {
        to,
        value: U256::from(value),
        valid_after: now - 60,
        valid_before: now + 3600,
        nonce: keccak256([wallet.as_slice(), &[seed]].concat()),
    };
    signed_request(signer, wallet, &net.demo.token, net.demo.chain_id, terms).unwrap()
}

/// Every transaction of `txs` asked for at most `limit` gas.
pub async fn assert_gas_limits_within(net: &Net, txs: impl IntoIterator<Item = B256>, limit: u64) {
    for tx in txs {
        let sent = net.demo.provider.get_transaction_by_hash(tx).await.unwrap().unwrap();
        let gas_limit = alloy::consensus::Transaction::gas_limit(&sent);
        assert!(gas_limit <= limit, "{tx}: {gas_limit}");
    }
}

/// Waits until every payment of `ids` is settled or failed.
pub async fn wait_final<'a>(keeper: &KeeperProc, ids: impl Iterator<Item = &'a String> + Clone) {
    wait_until("the payments final", 60, || {
        let ids = ids.clone();
        async move {
            for id in ids {
                if !matches!(keeper.payment(id).await["status"].as_str(), Some("settled" | "failed")) {
                    return false;
                }
            }
            true
        }
    })
    .await;
}

/// Someone else submits the payment's authorization straight to the token.
pub async fn submit_directly(net: &Net, body: &Value) {
    let payload = &body["paymentPayload"]["payload"];
    let a = &payload["authorization"];
    let token = TestStablecoin::new(net.demo.token.address, &net.demo.provider);
    let number = |v: &Value| U256::from_str_radix(v.as_str().unwrap(), 10).unwrap();
    token
        .transferWithAuthorization_0(
            a["from"].as_str().unwrap().parse().unwrap(),
            a["to"].as_str().unwrap().parse().unwrap(),
            number(&a["value"]),
            number(&a["validAfter"]),
            number(&a["validBefore"]),
            a["nonce"].as_str().unwrap().parse::<B256>().unwrap(),
            payload["signature"].as_str().unwrap().parse().unwrap(),
        )
        .from(net.keys[0].address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
}

/// A contract wallet (test/mocks/MockERC1271Wallet.sol) owned by `owner`, which accepts the owner's ECDSA
/// signature with any bytes appended.
pub async fn contract_wallet(net: &Net, owner: Address) -> Address {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/MockERC1271Wallet.json");
    let artifact: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut code = alloy::hex::decode(artifact["bytecode"].as_str().unwrap()).unwrap();
    code.extend_from_slice(owner.into_word().as_slice());
    let deploy = TransactionRequest::default().with_deploy_code(code);
    let receipt = net.demo.provider.send_transaction(deploy).await.unwrap().get_receipt().await.unwrap();
    receipt.contract_address.unwrap()
}

/// A hostile contract wallet at `0xXX..XX` (`byte` repeated): it approves any signature when the gas price is
/// zero, as in an `eth_call` or `eth_estimateGas` without fees, and in a real transaction loops until its gas is
/// gone. Runtime code, by hand: `GASPRICE PUSH1 0x2d JUMPI` (to the loop when non-zero), `PUSH32 <selector of
/// isValidSignature> PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN`, then at 0x2d `JUMPDEST PUSH1 0x2d JUMP`.
pub async fn two_faced_wallet(net: &Net, byte: u8) -> Address {
    let wallet = Address::repeat_byte(byte);
    let code = format!("0x3a602d577f1626ba7e{}60005260206000f35b602d56", "00".repeat(28));
    net.demo.provider.raw_request::<_, ()>("anvil_setCode".into(), (wallet, code)).await.unwrap();
    wallet
}

/// `wallet` (a contract) opens a channel of 100 USDC to `recipient` with a 900 s challenge period; the test sends
/// as it through anvil's impersonation. Returns the channel id and a provider that sends as the wallet.
pub async fn open_from_contract(
    net: &Net,
    wallet: Address,
    recipient: Address,
    salt: u8,
) -> (B256, DynProvider) {
    let provider = &net.demo.provider;
    provider.raw_request::<_, ()>("anvil_impersonateAccount".into(), (wallet,)).await.unwrap();
    let ether = U256::from(10).pow(U256::from(18));
    provider.raw_request::<_, ()>("anvil_setBalance".into(), (wallet, ether)).await.unwrap();
    let deposit = U256::from(100 * USDC);
    net.demo.mint(wallet, deposit).await.unwrap();
    let as_wallet = ProviderBuilder::new().connect_http(net.anvil.endpoint_url()).erased();
    let channels = net.demo.contracts.payment_channel;
    let token = TestStablecoin::new(net.demo.token.address, &as_wallet);
    sent_by(token.approve(channels, deposit).from(wallet).send().await).await;
    let expires_at = U256::from(net.demo.now().await.unwrap() + 60);
    let contract = PaymentChannel::new(channels, &as_wallet);
    let salt = B256::repeat_byte(salt);
    let open =
        contract.openChannel(salt, recipient, net.demo.token.address, deposit, expires_at, U256::from(900));
    sent_by(open.from(wallet).send().await).await;
    (x402_bindings::voucher::channel_id(wallet, salt), as_wallet)
}

pub async fn sent_by(
    call: alloy::contract::Result<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>>,
) {
    let receipt = call.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status(), "{receipt:?}");
}

/// The payer's 65-byte voucher signature in forms ECDSA libraries accept but the contract does not: its
/// malleable high-s twin, and v as 0/1.
pub fn malleable(voucher: &Value) -> [Value; 2] {
    let signature = alloy::hex::decode(voucher["signature"].as_str().unwrap()).unwrap();
    let order =
        U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
    let mut high_s = signature.clone();
    high_s[32..64].copy_from_slice(&(order - U256::from_be_slice(&signature[32..64])).to_be_bytes::<32>());
    high_s[64] = if signature[64] == 27 { 28 } else { 27 };
    let mut zero_one = signature;
    zero_one[64] -= 27;
    [high_s, zero_one].map(|bytes| {
        let mut body = voucher.clone();
        body["signature"] = Value::String(alloy::hex::encode_prefixed(bytes));
        body
    })
}

/// What the keeper process logged so far.
pub fn keeper_log(keeper: &KeeperProc) -> String {
    std::fs::read_to_string(&keeper.log).unwrap_or_default()
}
