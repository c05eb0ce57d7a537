//! The systemd notify protocol without systemd: a datagram socket stands in for the manager.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::{wait_exit, wait_until, FakeSlack, Setup};

/// Read datagrams until one contains `needle` or the deadline passes; returns all seen.
async fn read_until(sock: &UnixDatagram, needle: &str, deadline: Duration, seen: &mut Vec<String>) {
    let what = format!("{needle:?} from the daemon");
    wait_until(&what, deadline, || {
        // Everything that has arrived, without blocking: the socket is non-blocking.
        let mut buf = [0u8; 4096];
        let mut hit = false;
        while let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            hit = msg.contains(needle);
            seen.push(msg);
            if hit {
                break;
            }
        }
        std::future::ready(if hit {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_status_watchdog_and_stopping() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-me"]).await;
    let setup = Setup::new(
        &slack,
        "timezone = \"Europe/Berlin\"\n[tokens.me]\ntoken_env = \"N_ME\"\n\
         [[rules]]\nname = \"r\"\ntoken = \"me\"\nat = \"09:00\"\nstatus_text = \"x\"\n",
    );
    let sock_path = setup.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut child = setup.spawn(
        "daemon.log",
        &[
            ("N_ME", "xoxp-me"),
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut seen = Vec::new();
    read_until(&sock, "READY=1", Duration::from_secs(10), &mut seen).await;
    let ready = seen.last().unwrap();
    assert!(ready.contains("STATUS=1 rules, next firing "), "{ready}");
    assert!(
        ready.contains("09:00:00 Europe/Berlin, 0 pending"),
        "{ready}"
    );
    read_until(&sock, "WATCHDOG=1", Duration::from_secs(2), &mut seen).await;
    // A reload: RELOADING=1 with MONOTONIC_USEC= (systemd 253+ insists), then READY=1 again.
    common::signal(&child, "HUP");
    read_until(&sock, "RELOADING=1", Duration::from_secs(5), &mut seen).await;
    assert!(seen.last().unwrap().contains("MONOTONIC_USEC="), "{seen:?}");
    read_until(&sock, "READY=1", Duration::from_secs(5), &mut seen).await;
    common::signal(&child, "TERM");
    read_until(&sock, "STOPPING=1", Duration::from_secs(5), &mut seen).await;
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
}
