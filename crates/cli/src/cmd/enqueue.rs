//! `x402 enqueue` and `x402 payment`: hand signed x402 payments to a running keeper and ask about them.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use eyre::WrapErr;
use serde_json::Value;

use super::say;

/// Queue signed x402 `exact` payments with a running keeper.
#[derive(Debug, clap::Args)]
pub(crate) struct EnqueueArgs {
    /// JSON file (`-` for stdin) with one facilitator request `{x402Version, paymentPayload,
    /// paymentRequirements}` or an array of them.
    file: PathBuf,
    /// The keeper's HTTP API.
    #[arg(long, env = "X402_KEEPER_URL", default_value = "http://127.0.0.1:8402")]
    keeper_url: String,
}

/// Show the status of queued payments.
#[derive(Debug, clap::Args)]
pub(crate) struct PaymentArgs {
    /// Payment ids, `<token>:<payer>:<nonce>` as `enqueue` prints them.
    #[arg(required = true)]
    ids: Vec<String>,
    /// The keeper's HTTP API.
    #[arg(long, env = "X402_KEEPER_URL", default_value = "http://127.0.0.1:8402")]
    keeper_url: String,
}

/// Most times one payment is sent again after a 429 that names a `Retry-After`.
const RATE_LIMIT_RETRIES: u32 = 20;
/// The longest wait honoured from a `Retry-After`.
const MAX_RETRY_AFTER_SECS: u64 = 60;

/// Posts `request`; a 429 with `Retry-After` (the keeper's rate limit, or its queue full until the next tick)
/// is waited out, at most [`MAX_RETRY_AFTER_SECS`] at a time, and sent again, up to [`RATE_LIMIT_RETRIES`] times.
/// Other answers are returned as they are.
async fn post_waiting_out_rate_limits(
    client: &reqwest::Client,
    url: &str,
    request: &Value,
    index: usize,
) -> eyre::Result<(reqwest::StatusCode, Value)> {
    let mut retries = 0;
    loop {
        let response = client
            .post(url)
            .json(request)
            .send()
            .await
            .wrap_err_with(|| format!("cannot reach the keeper at {url}"))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match retry_after {
            Some(secs)
                if status == reqwest::StatusCode::TOO_MANY_REQUESTS && retries < RATE_LIMIT_RETRIES =>
            {
                retries += 1;
                let secs = secs.clamp(1, MAX_RETRY_AFTER_SECS);
                let error = body["error"].as_str().unwrap_or("too many requests");
                say(format!("{index}: 429 ({error}); sending again in {secs} s"));
                tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            }
            _ => return Ok((status, body)),
        }
    }
}

fn client() -> eyre::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .wrap_err("cannot build the HTTP client")
}

impl EnqueueArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let text = if self.file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).wrap_err("cannot read stdin")?;
            text
        } else {
            std::fs::read_to_string(&self.file)
                .wrap_err_with(|| format!("cannot read {}", self.file.display()))?
        };
        let document: Value =
            serde_json::from_str(&text).wrap_err_with(|| format!("{} is not JSON", self.file.display()))?;
        let requests = match document {
            Value::Array(items) => items,
            single => vec![single],
        };
        let url = format!("{}/payments", self.keeper_url.trim_end_matches('/'));
        let client = client()?;
        let mut refused = 0usize;
        for (index, request) in requests.iter().enumerate() {
            let (status, body) = post_waiting_out_rate_limits(&client, &url, request, index).await?;
            if status.is_success() {
                say(format!(
                    "{index}: {} {}",
                    body["status"].as_str().unwrap_or("?"),
                    body["id"].as_str().unwrap_or("?")
                ));
            } else {
                refused += 1;
                let reason = body["invalidReason"].as_str().or(body["error"].as_str()).unwrap_or("?");
                say(format!("{index}: refused ({status}): {reason}"));
            }
        }
        Ok(if refused == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}

impl PaymentArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let client = client()?;
        let mut missing = false;
        for id in &self.ids {
            let url = format!("{}/payments/{id}", self.keeper_url.trim_end_matches('/'));
            let response = client
                .get(&url)
                .send()
                .await
                .wrap_err_with(|| format!("cannot reach the keeper at {url}"))?;
            missing |= !response.status().is_success();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            say(serde_json::to_string_pretty(&body).unwrap_or_default());
        }
        Ok(if missing { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }
}
