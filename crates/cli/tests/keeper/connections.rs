//! Connections: slow, idle and flooding clients cannot take the API from others.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::keeper::*;

/// Opens a TCP connection from `local` (any 127.0.0.0/8 address) to the keeper.
async fn connect_from(keeper: &KeeperProc, local: &str) -> Option<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let addr = keeper.api.trim_start_matches("http://").parse().unwrap();
    tokio::time::timeout(Duration::from_secs(5), socket.connect(addr)).await.ok()?.ok()
}

/// Reads until the server closes the connection or `within` passes; returns what was read and whether it closed.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// Finding 5: 1,000 half-sent requests and idle keep-alive connections stayed open past 90 s, and about 20,100
/// connections from one local client used up the keeper's open files, so `/health` and `/payments` timed out
/// for everyone. Now request headers and bodies have deadlines, idle connections are closed, and connections
/// are capped per client and in total, with a reserve that still answers `/health`.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_connections_are_closed_and_a_flood_leaves_room_for_health() {
    let net = net(crate::common::anvil().spawn()).await;
    let settings = "header_timeout_secs = 2\nbody_timeout_secs = 2\nmax_connections = 60\n\
                    max_connections_per_client = 20\n";
    let keeper = keeper_with(&net, 600, settings).await;

    // A slowloris flood from 127.0.0.1: 200 connections, each sending half a request.
    let mut flood = Vec::new();
    for _ in 0..200 {
        if let Some(mut stream) = connect_from(&keeper, "127.0.0.1").await {
            let _ = stream.write_all(b"POST /payments HTTP/1.1\r\nHost: keeper\r\n").await;
            flood.push(stream);
        }
    }
    // Another client gets in at once, and so does a health check.
    let health = client_from("127.0.0.2").get(format!("{}/health", keeper.api)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Every flooding connection ends within the header deadline (2 s) and a margin: all but 20 at once.
    let started = Instant::now();
    let mut closed = 0;
    for stream in &mut flood {
        let (_, done) = read_to_close(stream, Duration::from_secs(6).saturating_sub(started.elapsed())).await;
        closed += usize::from(done);
    }
    assert_eq!(closed, flood.len(), "every half-sent request is cut off");
    assert!(keeper_log(&keeper).contains("connection cap reached"), "the cap is logged");

    // An idle keep-alive connection is closed after the header deadline.
    let mut idle = connect_from(&keeper, "127.0.0.3").await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: keeper\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let (answer, done) = read_to_close(&mut idle, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(done && started.elapsed() < Duration::from_secs(5), "idle for {:?}", started.elapsed());

    // A body that never arrives gets 408 (as JSON) after the body deadline.
    let mut slow = connect_from(&keeper, "127.0.0.4").await.unwrap();
    slow.write_all(
        b"POST /payments HTTP/1.1\r\nHost: keeper\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"x",
    )
    .await
    .unwrap();
    let (answer, done) = read_to_close(&mut slow, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("\"error\""), "{answer}");
    assert!(done);

    // Many clients at once fill every regular slot: monitoring is still served from the reserve.
    let mut held = Vec::new();
    for i in 0..3 {
        for _ in 0..20 {
            if let Some(stream) = connect_from(&keeper, &format!("127.0.1.{i}")).await {
                held.push(stream);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = client_from("127.0.0.5").get(format!("{}/health", keeper.api)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "health from the reserve");
    let payments = client_from("127.0.0.6").post(format!("{}/payments", keeper.api)).body("{}").send().await;
    let status = payments.unwrap().status().as_u16();
    assert_eq!(status, 503, "the API is full, and says so");
    drop(held);
}
