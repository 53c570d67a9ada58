//! Helpers shared by the CLI's integration tests: anvil from the project's toolchain, the built `x402` binary
//! with a controlled environment, scratch record directories, and output assertions.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, address};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

pub const BASE_SEPOLIA_USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
pub const IMPLEMENTATION_SLOT: B256 =
    alloy::primitives::b256!("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");

pub fn tools(tool: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../node_modules/@foundry-rs/{tool}-linux-amd64/bin/{tool}"));
    assert!(path.exists(), "{tool} is not installed at {}: run bin/setup", path.display());
    path
}

pub fn anvil() -> Anvil {
    Anvil::at(tools("anvil"))
}

/// A scratch directory for records and config files, removed at the end of the test.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    pub fn dir(&self) -> &Path {
        self.0.path()
    }
    pub fn record_path(&self, network: &str) -> PathBuf {
        self.dir().join(format!("{network}.json"))
    }
    pub fn record(&self, network: &str) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.record_path(network)).unwrap()).unwrap()
    }
}

pub fn key_hex(anvil: &AnvilInstance, index: usize) -> String {
    format!("0x{}", alloy::hex::encode(anvil.keys()[index].to_bytes()))
}

/// `x402 <args>` with the deployer key of `key` (or none) and no ETH_RPC_URL from the environment.
pub fn x402(args: &[&str], key: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_x402"));
    command
        .args(args)
        .env_remove("ETH_RPC_URL")
        .env_remove("X402_PRIVATE_KEY")
        .env_remove("X402_KEYSTORE_PASSWORD");
    if let Some(key) = key {
        command.env("X402_PRIVATE_KEY", key);
    }
    command.stdin(Stdio::null());
    command
}

pub fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

pub fn deploy(anvil: &AnvilInstance, scratch: &Scratch, network: &str, extra: &[&str]) -> Output {
    let rpc = anvil.endpoint();
    let dir = scratch.dir().to_str().unwrap().to_owned();
    let mut args =
        vec!["deploy", "--network", network, "--rpc-url", &rpc, "--deployments-dir", &dir, "--json"];
    args.extend_from_slice(extra);
    run(x402(&args, Some(&key_hex(anvil, 0))))
}

pub fn status(anvil: &AnvilInstance, scratch: &Scratch, network: &str) -> Output {
    let rpc = anvil.endpoint();
    let dir = scratch.dir().to_str().unwrap();
    run(x402(&["status", "--network", network, "--rpc-url", &rpc, "--deployments-dir", dir], None))
}

pub fn assert_success(output: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "x402 failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

/// Asserts a failure with a single `error: ...` line containing `expected`.
pub fn assert_error(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected a failure, got success: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(expected), "{expected:?} not in {stderr}");
}

pub fn provider(anvil: &AnvilInstance) -> DynProvider {
    let signer: PrivateKeySigner = anvil.keys()[0].clone().into();
    ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(anvil.endpoint_url()).erased()
}

pub fn address_of(record: &serde_json::Value, contract: &str, kind: &str) -> Address {
    record["contracts"][contract][kind]["address"].as_str().unwrap().parse().unwrap()
}
pub mod facilitator;
pub mod keeper;
pub mod paywall;
pub mod relay;
