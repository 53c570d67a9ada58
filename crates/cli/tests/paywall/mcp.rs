//! `x402 mcp` driven over stdio by rmcp's client, as an MCP host drives it: against anvil, `x402 facilitator`
//! and the paid demo app (exact and channel offers), with the deployment's ToolRegistry and CreditSystem.

use std::path::Path;

use alloy::network::EthereumWallet;
use alloy::primitives::{B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use x402_bindings::{CreditSystem, TestStablecoin, ToolRegistry};
use x402_client::{ClientError, offer};
use x402_mcp::paid::{PAYMENT_META, PaidToolError, PaidTools, call_paid_tool, payment_required_of};
use x402_paywall::facilitator::HttpFacilitator;
use x402_protocol::{headers, v2};

use super::channels::{Stack, stack};
use crate::common::keeper::{KEEPER, MERCHANT, Net, net};
use crate::common::paywall::WEATHER_PRICE;
use crate::common::{address_of, anvil, key_hex};

/// The paying wallet: a funded payer no other test of this binary uses here.
const PAYER: usize = 3;

struct Mcp {
    service: RunningService<RoleClient, ()>,
}

impl Mcp {
    /// `x402 mcp` for `net` with `extra` flags, the payer's key from the environment.
    async fn start(net: &Net, ledger: &Path, extra: &[&str]) -> Self {
        let record = net.scratch.record_path("local");
        let asset = format!("{}:{}", net.demo.chain_id, net.demo.token.address);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402"));
        command
            .args(["mcp", "--rpc-url", &net.anvil.endpoint(), "--deployment", record.to_str().unwrap()])
            .args(["--allow-asset", &asset, "--ledger", ledger.to_str().unwrap()])
            .args(extra)
            .env_remove("ETH_RPC_URL")
            .env("X402_PRIVATE_KEY", key_hex(&net.anvil, PAYER))
            .env("RUST_LOG", "warn");
        let log = std::fs::File::create(net.scratch.dir().join("mcp.log")).unwrap();
        let (transport, _) = TokioChildProcess::builder(command).stderr(log).spawn().unwrap();
        Self { service: ().serve(transport).await.unwrap() }
    }

    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else { panic!("arguments are an object") };
        self.service
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .unwrap()
    }

    /// The structured result of a call that must succeed.
    async fn ok(&self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments).await;
        assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
        result.structured_content.unwrap()
    }

    /// The `{reason, message}` of a call that must be refused with a tool error.
    async fn refused(&self, tool: &str, arguments: Value) -> (String, String) {
        let result = self.call(tool, arguments).await;
        assert_eq!(result.is_error, Some(true), "{tool}: {result:?}");
        let error = result.structured_content.unwrap();
        (error["reason"].as_str().unwrap().to_owned(), error["message"].as_str().unwrap().to_owned())
    }
}

fn ledger(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A server whose every answer is a 402 with `header` as its PAYMENT-REQUIRED: its URL.
async fn rogue_offer(header: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/weather", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || {
        let header = header.clone();
        async move { (axum::http::StatusCode::PAYMENT_REQUIRED, [("payment-required", header)], "{}") }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn signer_provider(net: &Net, key: &PrivateKeySigner) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(net.anvil.endpoint().parse().unwrap())
        .erased()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_pays_through_mcp_within_its_policy_and_budget() {
    let net = net(anvil().spawn()).await;
    net.demo.approve_claim_operator(net.keys[MERCHANT].address(), net.keys[KEEPER].address()).await.unwrap();
    let Stack { data: _data, facilitator: _facilitator, app, weather, .. } = stack(&net, 1800, 600).await;
    let scratch = tempfile::tempdir().unwrap();
    let ledger_path = scratch.path().join("ledger.jsonl");
    let payer = net.keys[PAYER].address();
    let merchant = net.keys[MERCHANT].address();
    // $0.004 a day: two requests of $0.0015, not three.
    let mcp = Mcp::start(&net, &ledger_path, &["--max", "$0.01", "--budget", "$0.004"]).await;

    let tools = mcp.service.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "x402_balance",
            "x402_channel_close",
            "x402_channel_open",
            "x402_fetch",
            "x402_pay_tool",
            "x402_pay_tool_credits",
            "x402_quote",
            "x402_sign_authorization",
            "x402_tools",
            "x402_verify_payment"
        ]
    );
    let fetch = tools.iter().find(|t| t.name == "x402_fetch").unwrap();
    assert!(fetch.input_schema["properties"]["maxPrice"].is_object(), "{:?}", fetch.input_schema);

    // A quote: both offers, the exact one picked (no channel yet), nothing paid.
    let quote = mcp.ok("x402_quote", json!({"url": weather})).await;
    assert_eq!((quote["free"].as_bool(), quote["status"].as_u64()), (Some(false), Some(402)));
    let schemes: Vec<&str> =
        quote["requirements"].as_array().unwrap().iter().map(|r| r["scheme"].as_str().unwrap()).collect();
    assert_eq!(schemes, ["exact", "channel"]);
    assert_eq!(quote["wouldPay"]["scheme"], "exact");
    assert_eq!(quote["wouldPay"]["dollars"], "0.0015");
    assert_eq!(app.served(), 0);

    // Paid: the body, the settlement transaction, the merchant's balance; one ledger line.
    let before = net.demo.balance(merchant).await.unwrap();
    let paid = mcp.ok("x402_fetch", json!({"url": weather})).await;
    assert_eq!(paid["status"], 200, "{paid}");
    assert!(paid["body"].as_str().unwrap().contains("sunny"), "{paid}");
    let transaction = paid["paid"]["transaction"].as_str().unwrap().to_owned();
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before + U256::from(WEATHER_PRICE));
    let lines = ledger(&ledger_path);
    assert_eq!(lines.len(), 1);
    assert_eq!((lines[0]["kind"].as_str(), lines[0]["outcome"].as_str()), (Some("exact"), Some("paid")));
    assert_eq!(lines[0]["transaction"], transaction.as_str());
    assert_eq!(lines[0]["amount"], WEATHER_PRICE.to_string());

    // On chain: the transaction's transfer to the merchant, and the authorization used.
    let verified = mcp.ok("x402_verify_payment", json!({"transaction": transaction})).await;
    assert_eq!(verified["transaction"]["status"], "success");
    let transfers = verified["transaction"]["transfers"].as_array().unwrap();
    assert!(
        transfers.iter().any(|t| t["to"] == merchant.to_string() && t["value"] == format!("{WEATHER_PRICE}")),
        "{verified}"
    );
    let id = format!(
        "eip155:{}:{}:{payer}:{}",
        net.demo.chain_id,
        net.demo.token.address,
        lines[0]["nonce"].as_str().unwrap()
    );
    let verified = mcp.ok("x402_verify_payment", json!({"id": id})).await;
    assert_eq!(verified["authorization"]["used"], true);
    let unused =
        format!("eip155:{}:{}:{payer}:{}", net.demo.chain_id, net.demo.token.address, B256::repeat_byte(7));
    assert_eq!(mcp.ok("x402_verify_payment", json!({"id": unused})).await["authorization"]["used"], false);

    // A lower cap for one call refuses it, nothing paid; the second payment fits, the third not: over budget,
    // with what is left in the message.
    let (reason, message) = mcp.refused("x402_fetch", json!({"url": weather, "maxPrice": "$0.001"})).await;
    assert!(reason == "policy" && message.contains("cap"), "{reason}: {message}");
    assert_eq!(mcp.ok("x402_fetch", json!({"url": weather})).await["status"], 200);
    let (reason, message) = mcp.refused("x402_fetch", json!({"url": weather})).await;
    assert_eq!(reason, "over_budget", "{message}");
    assert!(message.contains("1000 left"), "{message}");
    assert_eq!(app.served(), 2);
    assert_eq!(ledger(&ledger_path).len(), 2);

    // The balance: tokens, gas, the budget spent and left.
    let balance = mcp.ok("x402_balance", json!({})).await;
    assert_eq!(balance["address"], payer.to_string());
    let network = &balance["networks"][0];
    assert!(network["gasWei"].as_str().unwrap().parse::<u128>().unwrap() > 0);
    let token = network["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token"] == net.demo.token.address.to_string())
        .unwrap();
    assert_eq!(token["balance"], net.demo.balance(payer).await.unwrap().to_string());
    assert_eq!(
        (balance["budget"][0]["spent"].as_str(), balance["budget"][0]["left"].as_str()),
        (Some("3000"), Some("1000"))
    );

    // Malformed arguments are tool errors, and the server goes on.
    let bad = mcp.call("x402_fetch", json!({"url": 5})).await;
    assert_eq!(bad.is_error, Some(true), "{bad:?}");
    for (tool, arguments) in [
        ("x402_fetch", json!({"url": "ftp://example.com/file"})),
        ("x402_fetch", json!({"url": weather, "method": "NOT A METHOD"})),
        ("x402_fetch", json!({"url": weather, "maxPrice": "lots"})),
        ("x402_verify_payment", json!({"transaction": "0x12"})),
        ("x402_verify_payment", json!({})),
        ("x402_channel_close", json!({"channelId": "nope"})),
        ("x402_sign_authorization", json!({"paymentRequired": {"x402Version": 7}})),
    ] {
        let (reason, message) = mcp.refused(tool, arguments).await;
        assert_eq!(reason, "invalid_argument", "{tool}: {message}");
    }
    let unknown = mcp.call("x402_fetch", json!({"url": weather, "amount": "everything"})).await;
    assert_eq!(unknown.is_error, Some(true), "unknown arguments are refused: {unknown:?}");
    assert_eq!(mcp.ok("x402_quote", json!({"url": weather})).await["status"], 402, "still serving");
    mcp.service.cancel().await.unwrap();

    // A host that relays the request itself: a signed authorization, sent by the test, is settled once.
    let mcp = Mcp::start(&net, &ledger_path, &["--max", "$0.01"]).await;
    let response = reqwest::get(&weather).await.unwrap();
    let offer: Value = headers::decode(response.headers()["payment-required"].to_str().unwrap()).unwrap();
    let signed = mcp.ok("x402_sign_authorization", json!({"paymentRequired": offer})).await;
    assert_eq!(signed["header"], "PAYMENT-SIGNATURE");
    let relayed = reqwest::Client::new()
        .get(&weather)
        .header("PAYMENT-SIGNATURE", signed["value"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), 200);
    assert_eq!(app.served(), 3);
    let last = ledger(&ledger_path).pop().unwrap();
    assert_eq!((last["kind"].as_str(), last["outcome"].as_str()), (Some("authorization"), Some("signed")));
    mcp.service.cancel().await.unwrap();

    // Dry run: fetch quotes, paying tools refuse; nothing is paid or written.
    let mcp = Mcp::start(&net, &ledger_path, &["--dry-run"]).await;
    let dry = mcp.ok("x402_fetch", json!({"url": weather})).await;
    assert!(dry["paid"].is_null() && dry["note"].as_str().unwrap().contains("dry-run"), "{dry}");
    assert!(dry["body"].as_str().unwrap().contains("wouldPay"), "{dry}");
    assert_eq!(mcp.refused("x402_sign_authorization", json!({"paymentRequired": offer})).await.0, "dry_run");
    assert_eq!(mcp.refused("x402_pay_tool", json!({"toolId": 1})).await.0, "dry_run");
    assert_eq!(mcp.refused("x402_channel_open", json!({"url": weather, "deposit": "$2"})).await.0, "dry_run");
    let some_channel = B256::repeat_byte(1).to_string();
    assert_eq!(mcp.refused("x402_channel_close", json!({"channelId": some_channel})).await.0, "dry_run");
    assert_eq!(app.served(), 3);
    assert_eq!(ledger(&ledger_path).len(), 3);
    mcp.service.cancel().await.unwrap();

    // The ledger, as the user reads it.
    let printed = crate::common::run(crate::common::x402(
        &["mcp", "--print-ledger", "--ledger", ledger_path.to_str().unwrap()],
        None,
    ));
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success() && text.lines().count() == 3, "{text}");
    assert!(text.contains(&transaction) && text.contains("authorization signed"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_opens_pays_through_and_closes_a_channel_and_pays_registry_tools() {
    let net = net(anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    net.demo.approve_claim_operator(merchant, net.keys[KEEPER].address()).await.unwrap();
    let Stack { data: _data, facilitator: _facilitator, app, weather, .. } = stack(&net, 1800, 600).await;
    let scratch = tempfile::tempdir().unwrap();
    let ledger_path = scratch.path().join("ledger.jsonl");
    let payer = net.keys[PAYER].address();
    let mcp = Mcp::start(&net, &ledger_path, &["--max", "$0.01", "--max-deposit", "$5"]).await;

    // Open: above the maximum deposit refused, nothing sent; an offer naming another PaymentChannel than the
    // deployment's refused (the deposit would be approved to it); then $2.
    let (reason, message) = mcp.refused("x402_channel_open", json!({"url": weather, "deposit": "$6"})).await;
    assert!(reason == "policy" && message.contains("maximum"), "{message}");
    let response = reqwest::get(&weather).await.unwrap();
    let mut offer: Value = headers::decode(response.headers()["payment-required"].to_str().unwrap()).unwrap();
    offer["accepts"][1]["extra"]["paymentChannel"] = json!(net.keys[4].address().to_string());
    let rogue = rogue_offer(headers::encode(&offer).unwrap()).await;
    let (reason, message) = mcp.refused("x402_channel_open", json!({"url": rogue, "deposit": "$2"})).await;
    assert!(reason == "policy" && message.contains("not the deployment's"), "{message}");
    let before = net.demo.balance(payer).await.unwrap();
    let opened = mcp.ok("x402_channel_open", json!({"url": weather, "deposit": "$2"})).await;
    let id = opened["channelId"].as_str().unwrap().to_owned();
    assert_eq!(opened["deposit"], "2000000");
    assert_eq!(net.demo.balance(payer).await.unwrap(), before - U256::from(2_000_000));

    // Fetches now pay by voucher: no transaction, the running total counting up.
    for n in 1..=3u64 {
        let paid = mcp.ok("x402_fetch", json!({"url": weather})).await;
        assert_eq!(paid["status"], 200, "{paid}");
        assert_eq!(paid["paid"]["requirement"]["scheme"], "channel", "{paid}");
        assert_eq!(paid["paid"]["channelId"], id.as_str());
        assert_eq!(paid["paid"]["channelCumulative"], (n * WEATHER_PRICE).to_string());
        assert!(paid["paid"]["transaction"].is_null());
    }
    assert_eq!(
        net.demo.balance(payer).await.unwrap(),
        before - U256::from(2_000_000),
        "vouchers move nothing"
    );
    let balance = mcp.ok("x402_balance", json!({})).await;
    let channel = &balance["networks"][0]["channels"][0];
    assert_eq!(
        (channel["channelId"].as_str(), channel["status"].as_str()),
        (Some(id.as_str()), Some("open"))
    );
    assert_eq!(channel["remaining"], (2_000_000 - 3 * WEATHER_PRICE).to_string());
    mcp.service.cancel().await.unwrap();

    // A restarted server finds the open channel in its ledger and goes on from the server's total.
    let mcp = Mcp::start(&net, &ledger_path, &["--max", "$0.01", "--max-deposit", "$5"]).await;
    let paid = mcp.ok("x402_fetch", json!({"url": weather})).await;
    assert_eq!(paid["paid"]["channelCumulative"], (4 * WEATHER_PRICE).to_string(), "{paid}");
    assert_eq!(app.served(), 4);

    // Close: started (vouchers stop, fetch pays exact again), then finalized after the challenge.
    let closed = mcp.ok("x402_channel_close", json!({"channelId": id})).await;
    assert_eq!(closed["close"]["step"], "started", "{closed}");
    let exact = mcp.ok("x402_fetch", json!({"url": weather})).await;
    assert_eq!(exact["paid"]["requirement"]["scheme"], "exact", "{exact}");
    let (reason, message) = mcp.refused("x402_channel_close", json!({"channelId": id})).await;
    assert!(reason == "invalid_argument" && message.contains("finalize after it"), "{message}");
    net.demo.advance(7 * 86_400 + 1801).await.unwrap();
    let finalized = mcp.ok("x402_channel_close", json!({"channelId": id})).await;
    assert_eq!(finalized["close"]["step"], "finalized", "{finalized}");
    let kinds: Vec<String> = ledger(&ledger_path)
        .iter()
        .map(|e| format!("{} {}", e["kind"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            "channel_open opened",
            "channel paid",
            "channel paid",
            "channel paid",
            "channel paid",
            "channel_close closing",
            "exact paid",
            "channel_close closed"
        ]
    );

    // ToolRegistry: a developer's tool, listed, paid with an allowance, then with credits.
    let record = net.scratch.record("local");
    let registry = address_of(&record, "ToolRegistry", "proxy");
    let credit_system = address_of(&record, "CreditSystem", "proxy");
    let developer = &net.keys[4];
    let token = net.demo.token.address;
    let price = 2_500u64;
    let as_developer = signer_provider(&net, developer);
    let tools = ToolRegistry::new(registry, &as_developer);
    let register = tools.registerTool(
        "forecast".into(),
        token,
        alloy::primitives::Uint::from(price),
        developer.address(),
    );
    register.send().await.unwrap().get_receipt().await.unwrap();
    let listed = mcp.ok("x402_tools", json!({})).await;
    let tool = listed["tools"].as_array().unwrap().iter().find(|t| t["name"] == "forecast").unwrap().clone();
    assert_eq!((tool["price"].as_str(), tool["active"].as_bool()), (Some("2500"), Some(true)));
    let tool_id = tool["id"].as_u64().unwrap();
    let before = net.demo.balance(payer).await.unwrap();
    let paid = mcp.ok("x402_pay_tool", json!({"toolId": tool_id})).await;
    assert!(paid["transaction"].as_str().unwrap().starts_with("0x"));
    assert_eq!(net.demo.balance(payer).await.unwrap(), before - U256::from(price));
    let stats = ToolRegistry::new(registry, net.demo.provider.clone())
        .getToolStats(U256::from(tool_id))
        .call()
        .await
        .unwrap();
    assert_eq!(stats.calls, 1);
    let (reason, _) = mcp.refused("x402_pay_tool", json!({"toolId": tool_id, "maxPrice": "2000"})).await;
    assert_eq!(reason, "policy");
    assert_eq!(mcp.refused("x402_pay_tool", json!({"toolId": 999})).await.0, "chain");

    // Credits: none yet, refused; deposited, paid from them.
    assert_eq!(mcp.refused("x402_pay_tool_credits", json!({"toolId": tool_id})).await.0, "invalid_argument");
    let as_payer = signer_provider(&net, &net.keys[PAYER]);
    let deposit = U256::from(10_000);
    TestStablecoin::new(token, &as_payer)
        .approve(credit_system, deposit)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    CreditSystem::new(credit_system, &as_payer)
        .deposit(token, deposit)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let paid = mcp.ok("x402_pay_tool_credits", json!({"toolId": tool_id})).await;
    assert_eq!(paid["withCredits"], true);
    let balance = mcp.ok("x402_balance", json!({})).await;
    let credits = &balance["networks"][0]["credits"];
    let left: Vec<&Value> =
        credits.as_array().unwrap().iter().filter(|c| c["token"] == token.to_string()).collect();
    assert_eq!(left[0]["principal"], (10_000 - price).to_string(), "{credits}");
    let kinds: Vec<String> =
        ledger(&ledger_path).iter().rev().take(2).map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["tool_credits", "tool"]);
    mcp.service.cancel().await.unwrap();
}

/// A paid demo MCP server: `forecast` costs [`TOOL_PRICE`] per call through [`PaidTools`] (`runs` counts its
/// runs), any other tool is free.
struct Forecast {
    paid: PaidTools,
    runs: Arc<AtomicUsize>,
}

const TOOL_PRICE: u64 = 2_000;

impl ServerHandler for Forecast {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let runs = Arc::clone(&self.runs);
        let name = request.name.to_string();
        let failing = request.arguments.as_ref().is_some_and(|a| a.contains_key("fail"));
        self.paid
            .call(&request, &context, || async move {
                if name == "forecast" {
                    runs.fetch_add(1, Ordering::SeqCst);
                }
                if failing {
                    return Ok(CallToolResult::error(vec![ContentBlock::text("no forecast today")]).into());
                }
                Ok(CallToolResult::success(vec![ContentBlock::text(format!("{name}: sunny"))]).into())
            })
            .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_agent_pays_a_paid_mcp_tool_like_a_free_one() {
    let net = net(anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    net.demo.approve_claim_operator(merchant, net.keys[KEEPER].address()).await.unwrap();
    let Stack { data: _data, facilitator, app: _app, weather, .. } = stack(&net, 1800, 600).await;
    // The weather route's exact requirement, at the tool's price.
    let response = reqwest::get(&weather).await.unwrap();
    let offer: Value = headers::decode(response.headers()["payment-required"].to_str().unwrap()).unwrap();
    let mut requirement: v2::PaymentRequirements =
        serde_json::from_value(offer["accepts"][0].clone()).unwrap();
    assert_eq!(requirement.scheme, "exact");
    requirement.amount = TOOL_PRICE.to_string();
    let paid = PaidTools::new(HttpFacilitator::new(&facilitator.url).unwrap()).price(
        "forecast",
        "Tomorrow's weather",
        requirement,
    );
    let runs = Arc::new(AtomicUsize::new(0));
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let server = Forecast { paid, runs: Arc::clone(&runs) };
    tokio::spawn(async move {
        let running = server.serve(server_io).await.unwrap();
        let _ = running.waiting().await;
    });
    let mcp = ().serve(client_io).await.unwrap();
    let forecast = || CallToolRequestParams::new("forecast");

    // Unpaid: the transport's payment-required tool error, in both places, and the tool not run.
    let unpaid = mcp.call_tool(forecast()).await.unwrap();
    assert_eq!(unpaid.is_error, Some(true));
    let required = unpaid.structured_content.clone().unwrap();
    assert_eq!(
        (required["x402Version"].as_u64(), required["accepts"][0]["amount"].as_str()),
        (Some(2), Some("2000"))
    );
    assert_eq!(required["resource"]["url"], "mcp://tool/forecast");
    let text: Value = serde_json::from_str(&unpaid.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(text["x402/error"]["code"], 402);
    assert_eq!(text["x402/error"]["data"], required);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    // A free tool needs nothing.
    let free = mcp.call_tool(CallToolRequestParams::new("ping")).await.unwrap();
    assert_ne!(free.is_error, Some(true));

    // Paid like a free tool: the answer, the receipt in _meta, the merchant paid once.
    let agent = crate::common::paywall::client(&net, &net.keys[PAYER]);
    let before = net.demo.balance(merchant).await.unwrap();
    let call = call_paid_tool(mcp.peer(), &agent, forecast()).await.unwrap();
    assert_eq!(call.result.content[0].as_text().unwrap().text, "forecast: sunny");
    let receipt = call.receipt.unwrap();
    assert!(receipt.success && receipt.transaction.starts_with("0x"), "{receipt:?}");
    assert_eq!(call.payment.unwrap().amount, U256::from(TOOL_PRICE));
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before + U256::from(TOOL_PRICE));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // One payment pays one call: sent again, it is refused and the tool not run.
    let priced = offer::from_json(required.clone()).unwrap();
    let (signed, _) = agent.authorize(&priced).await.unwrap();
    let with = |payload: &Value| {
        let mut meta = rmcp::model::RequestMetaObject::new();
        meta.insert(PAYMENT_META.to_owned(), payload.clone());
        let mut params = forecast();
        params.meta = Some(meta);
        params
    };
    let first = mcp.call_tool(with(&signed.payload)).await.unwrap();
    assert_ne!(first.is_error, Some(true), "{first:?}");
    let again = mcp.call_tool(with(&signed.payload)).await.unwrap();
    let error = payment_required_of(&again).unwrap();
    assert_eq!(error["error"], "this payment was used already");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before + U256::from(2 * TOOL_PRICE));

    // A tool that fails is not charged: the same payment then pays a call that works.
    let (signed, _) = agent.authorize(&priced).await.unwrap();
    let mut failing = with(&signed.payload);
    failing.arguments = Some(serde_json::from_value(json!({"fail": true})).unwrap());
    let failed = mcp.call_tool(failing).await.unwrap();
    assert_eq!(failed.is_error, Some(true));
    assert!(payment_required_of(&failed).is_none(), "a tool failure, not a payment one");
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before + U256::from(2 * TOOL_PRICE));
    assert_ne!(mcp.call_tool(with(&signed.payload)).await.unwrap().is_error, Some(true));
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before + U256::from(3 * TOOL_PRICE));

    // A forged payment (another payTo) and a payment over the agent's cap are refused.
    let mut forged = signed.payload.clone();
    forged["accepted"]["payTo"] = json!(net.keys[4].address().to_string());
    let refused = mcp.call_tool(with(&forged)).await.unwrap();
    assert!(payment_required_of(&refused).unwrap()["error"].as_str().unwrap().contains("does not offer"));
    let frugal = crate::common::paywall::client(&net, &net.keys[PAYER]).policy(
        x402_client::Policy::default()
            .allow_asset(net.demo.chain_id, net.demo.token.address)
            .max_per_request("1000".parse().unwrap()),
    );
    let over = call_paid_tool(mcp.peer(), &frugal, forecast()).await.unwrap_err();
    assert!(matches!(over, PaidToolError::Client(ClientError::Refused(_))), "{over}");
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    mcp.cancel().await.unwrap();
}
