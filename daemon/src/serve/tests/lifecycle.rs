//! Binding, shutdown, timeouts and the connection limit.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

#[tokio::test]
async fn binding_a_taken_address_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let e = bind(ServeConfig::new(addr, "/nonexistent".into()))
        .await
        .unwrap_err();
    assert!(matches!(&e, ServeError::Bind { addr: a, .. } if *a == addr));
    assert_eq!(e.to_string(), format!("cannot listen on {addr}"));
    assert!(std::error::Error::source(&e).is_some());
}

/// Reads a response head (up to the blank line) from a kept-alive connection.
async fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    head
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_closes_idle_connections() {
    let tmp = tree();
    let big: Vec<u8> = (0..32_000_000u32).map(|i| (i % 253) as u8).collect();
    write(
        &tmp.path().join("published"),
        &format!("r/targets/{H}.big"),
        &big,
    );
    let mut s = TestServer::start(&tmp).await;

    // An idle keep-alive connection, after one request.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /r/metadata/root.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut idle).await;
    assert!(head.starts_with(b"HTTP/1.1 200"));
    let mut small = [0u8; 10];
    idle.read_exact(&mut small).await.unwrap();

    // A large download, started: headers read, most of the body not.
    let mut busy = TcpStream::connect(s.addr).await.unwrap();
    busy.write_all(format!("GET /r/targets/{H}.big HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut busy).await;
    assert!(head.starts_with(b"HTTP/1.1 200"));

    let addr = s.addr;
    let stopped = s.shutdown();
    // The idle connection is closed promptly.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    // New connections are refused once the listener is gone.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(addr).await.is_err());
    // The download completes, then the server returns.
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), busy.read_to_end(&mut body))
        .await
        .unwrap()
        .unwrap();
    assert!(
        body == big,
        "download cut short: {} of {} bytes",
        body.len(),
        big.len()
    );
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off() {
    let tmp = tree();
    let limit = Duration::from_millis(300);
    let s = TestServer::start_with(&tmp, |c| c.header_read_timeout = limit).await;
    let started = Instant::now();
    // Headers that never end, a connection that never sends, and one kept alive idle.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /r/metadata/root.json HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /r/metadata/root.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    read_head(&mut idle).await;
    let mut body = [0u8; 10];
    idle.read_exact(&mut body).await.unwrap();
    for conn in [&mut slow, &mut silent, &mut idle] {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
            .await
            .expect("the server kept the connection open")
            .ok();
        assert!(
            rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"),
            "{rest:?}"
        );
    }
    assert!(started.elapsed() >= limit);
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_their_turn() {
    let tmp = tree();
    let s = TestServer::start_with(&tmp, |c| c.max_connections = 1).await;
    let mut first = TcpStream::connect(s.addr).await.unwrap();
    first
        .write_all(b"GET /r/metadata/root.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    read_head(&mut first).await;
    // The second connects (the kernel's backlog) but is not served while the first is open.
    let second = tokio::spawn({
        let addr = s.addr;
        async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(
                b"GET /r/metadata/root.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
            let mut buf = Vec::new();
            c.read_to_end(&mut buf).await.unwrap();
            Reply::parse(&buf)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished());
    drop(first);
    let r = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.status, r.text()), (200, "{\"root\":1}"));
}

#[tokio::test]
async fn the_drain_is_bounded() {
    let tmp = tree();
    let big = vec![0u8; 32_000_000];
    write(
        &tmp.path().join("published"),
        &format!("r/targets/{H}.big"),
        &big,
    );
    let mut s = TestServer::start_with(&tmp, |c| c.drain = Duration::from_millis(300)).await;
    // A client that stops reading mid-download.
    let mut stuck = TcpStream::connect(s.addr).await.unwrap();
    stuck
        .write_all(format!("GET /r/targets/{H}.big HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_head(&mut stuck).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), s.shutdown())
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Its connection was closed: reading ends before the whole body.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stuck.read_to_end(&mut got))
        .await
        .unwrap();
    assert!(got.len() < big.len());
}
