//! What the facilitator's integration tests share: an `x402 facilitator` process run as the user runs it, and the
//! official x402 packages (interop/, installed by `bin/setup-interop`) run with node.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::keeper::{KEEPER, MERCHANT, Net, free_port};
use super::{key_hex, x402};

/// An `x402 facilitator` process on one local network.
pub struct FacilitatorProc {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl FacilitatorProc {
    /// Starts `x402 facilitator` for `net`'s deployment, settling for the demo merchant, with `extra` arguments and
    /// `env` variables; on a free port unless `extra` has `--listen ADDR`.
    pub fn start(net: &Net, data_dir: &Path, log: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let given = extra.iter().position(|a| *a == "--listen").and_then(|at| extra.get(at + 1));
        let listen = given.map_or_else(|| format!("127.0.0.1:{}", free_port()), |addr| (*addr).to_owned());
        let extra: Vec<&str> = match extra.iter().position(|a| *a == "--listen") {
            Some(at) => {
                extra.iter().enumerate().filter(|(i, _)| *i != at && *i != at + 1).map(|(_, a)| *a).collect()
            }
            None => extra.to_vec(),
        };
        let network = format!("local={}", net.anvil.endpoint());
        let dir = net.scratch.dir().to_str().unwrap().to_owned();
        let merchant = net.keys[MERCHANT].address().to_string();
        let log_path = net.scratch.dir().join(log);
        let mut args = vec![
            "facilitator",
            "--network",
            &network,
            "--deployments-dir",
            &dir,
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            &listen,
            "--log-format",
            "json",
        ];
        if !extra.iter().any(|a| a.starts_with("--merchant") || *a == "--any-merchant") {
            args.extend(["--merchant", &merchant]);
        }
        args.extend(&extra);
        let mut command = x402(&args, Some(&key_hex(&net.anvil, KEEPER)));
        command.env_remove("X402_FACILITATOR_API_KEY");
        for (name, value) in env {
            command.env(name, value);
        }
        let child =
            command.stdout(Stdio::null()).stderr(std::fs::File::create(&log_path).unwrap()).spawn().unwrap();
        Self { child, url: format!("http://{listen}"), log: log_path }
    }

    /// [`FacilitatorProc::start`] with the log in `facilitator.log` and no extra environment, once `/ready`.
    pub async fn ready(net: &Net, data_dir: &Path, extra: &[&str]) -> Self {
        let mut facilitator = Self::start(net, data_dir, "facilitator.log", extra, &[]);
        facilitator.wait_ready().await;
        facilitator
    }

    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/ready", self.url)).await
                && r.status().is_success()
            {
                return;
            }
            assert!(self.child.try_wait().unwrap().is_none(), "the facilitator exited");
            assert!(Instant::now() < deadline, "the facilitator did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Posts `body` to `route`; the status and the JSON answer.
    pub async fn post(&self, route: &str, body: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{route}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, route: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{route}", self.url)).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url)).await.unwrap().text().await.unwrap()
    }

    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for FacilitatorProc {
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

/// The interop directory, with the official packages installed.
pub fn interop() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    assert!(
        dir.join("node_modules/@x402/core").exists(),
        "the official x402 packages are not installed in {}: run bin/setup-interop",
        dir.display()
    );
    dir
}

/// Runs `node interop/<script> <args>` and returns what it printed as JSON.
pub fn node(script: &str, args: &[&str]) -> Value {
    let output = std::process::Command::new("node")
        .current_dir(interop())
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node {script} failed: {stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("node {script} printed no JSON ({e}): {stderr}"))
}
