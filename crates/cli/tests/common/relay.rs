//! A JSON-RPC relay in front of anvil that counts the methods it is asked for and can play a node without some of
//! them (answering "method not found", as such a node does), so that a test sees which path a client took.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

struct Shared {
    upstream: String,
    missing: Vec<String>,
    asked: Mutex<HashMap<String, usize>>,
    client: reqwest::Client,
}

/// A running relay; stops with the test's runtime.
pub struct Relay {
    pub url: String,
    shared: Arc<Shared>,
}

impl Relay {
    /// Relays to `upstream`, answering the `missing` methods with JSON-RPC's -32601.
    pub async fn start(upstream: &str, missing: &[&str]) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            missing: missing.iter().map(|m| (*m).to_owned()).collect(),
            asked: Mutex::new(HashMap::new()),
            client: reqwest::Client::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/", axum::routing::post(relay)).with_state(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, shared }
    }

    /// How many times `method` was asked for (answered or not).
    pub fn asked(&self, method: &str) -> usize {
        self.shared.asked.lock().unwrap().get(method).copied().unwrap_or(0)
    }
}

async fn relay(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Json<Value> {
    // A batch is relayed call by call, in order.
    let Value::Array(calls) = body else { return Json(one(&shared, body).await) };
    let mut answers = Vec::new();
    for call in calls {
        answers.push(one(&shared, call).await);
    }
    Json(Value::Array(answers))
}

async fn one(shared: &Shared, call: Value) -> Value {
    let method = call["method"].as_str().unwrap_or_default().to_owned();
    *shared.asked.lock().unwrap().entry(method.clone()).or_default() += 1;
    if shared.missing.contains(&method) {
        let message = format!("the method {method} does not exist/is not available");
        return json!({"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32601, "message": message}});
    }
    let answer = shared.client.post(&shared.upstream).json(&call).send().await.unwrap();
    answer.json().await.unwrap()
}
