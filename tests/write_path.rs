//! The queue's write path under concurrency and faults: one writer task, every write
//! committed before it reports success, no row left `in_flight` by a failed write, and a
//! connection that works again as soon as the fault is gone.
//!
//! (A thousand concurrent claims and finishes, each getting its own rows: `tests/queue.rs`.)
//!
//! The faults are real: a small tmpfs filled up (CI runs as root; where mounting is refused
//! the test says so and skips), a caller that goes away in the middle of its claim, the
//! database file deleted under the running daemon.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use common::{rows, status_update, wait_for, FakeSlack, Setup};
use slack_statusd::queue::{Claim, Finish, Queue, State, Target};

/// A tmpfs of `size` mounted on a fresh folder; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with a visible message) where this machine refuses to mount.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); the full-disk test needs root",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); the full-disk test needs root");
                None
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fill the file system with a filler file until a write fails for lack of space.
    fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.path("filler")).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        // Whatever a partial write left: take the last bytes too.
        while f.write_all(&[0u8; 512]).is_ok() {}
        let _ = f.sync_all();
    }

    /// Give the space back.
    fn free(&self) {
        std::fs::remove_file(self.path("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn target(user: &str) -> Target {
    Target {
        token: "t".into(),
        user: Some(user.into()),
    }
}

async fn in_flight(db: &Path) -> usize {
    rows(db)
        .await
        .iter()
        .filter(|r| r.state == State::InFlight)
        .count()
}

/// A caller that goes away while its claim waits for the writer leaves no row claimed: the
/// writer puts the rows back to `pending` when it cannot hand them over.
#[tokio::test]
async fn a_claim_whose_caller_went_away_puts_its_rows_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let queue = Queue::open(&db, true).await.unwrap();
    let now = Utc::now();
    let id = queue
        .enqueue(&status_update("t", Some("U1"), "x", ":x:", now), now)
        .await
        .unwrap();
    // Polled once (the claim reaches the writer's channel), then dropped before the answer.
    // Should the writer ever answer within that one poll, that claim is handed back and the
    // cut is tried again: the test is about a claim whose answer finds nobody.
    let mut cut_off = false;
    for _ in 0..20 {
        match tokio::time::timeout(Duration::ZERO, queue.claim(&target("U1"), now)).await {
            Err(_) => {
                cut_off = true;
                break;
            }
            Ok(Ok(Claim::Send(batch))) => queue
                .finish(&batch, &Finish::Requeue, Utc::now(), Utc::now())
                .await
                .unwrap(),
            Ok(other) => panic!("U1 has a due row: {other:?}"),
        }
    }
    assert!(cut_off, "a claim was cut off before its answer");
    // The writer has run the claim by now or will; either way the row must end up pending.
    let mut state = None;
    for _ in 0..200 {
        // A write behind the claim in the writer's queue: once it answers, the claim and the
        // put-back before it have run.
        queue.release_held(None, Utc::now()).await.unwrap();
        state = queue.get(id).await.unwrap().map(|r| r.state);
        if state == Some(State::Pending) {
            break;
        }
    }
    assert_eq!(state, Some(State::Pending), "the row went back to pending");
    // And it is claimable again, by a caller that stays.
    assert!(matches!(
        queue.claim(&target("U1"), Utc::now()).await.unwrap(),
        Claim::Send(_)
    ));
    queue.close().await;
}

/// On a full file system every write either commits and says so, or fails and leaves no
/// trace: no id for a row that does not exist, no row left `in_flight` by a failed claim. When
/// space returns, the same connection writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_cleanly_and_they_work_again_when_space_returns() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let db = disk.path("queue.db");
    let queue = Queue::open(&db, true).await.unwrap();
    let now = Utc::now();
    let before = queue
        .enqueue(&status_update("t", Some("U0"), "before", ":x:", now), now)
        .await
        .unwrap();
    disk.fill();

    // Writes of ~2 KB each until the WAL needs room it cannot get.
    let big = "z".repeat(90);
    let mut committed = vec![before];
    let mut failure = None;
    for i in 0..5000 {
        let user = format!("U{i:04}");
        let mut update = status_update("t", Some(&user), &big, ":x:", now);
        update.patch.fields = (0..20)
            .map(|f| (format!("field{f}"), serde_json::json!("v".repeat(80))))
            .collect();
        match queue.enqueue(&update, now).await {
            Ok(id) => committed.push(id),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let failure = failure.expect("a write failed on the full disk");
    assert!(
        failure.contains(&db.display().to_string()) && failure.contains("full"),
        "the error names the database and the cause: {failure}"
    );
    // A claim on the full disk: it fails or succeeds, but never strands a row.
    match queue.claim(&target("U0"), Utc::now()).await {
        Ok(Claim::Send(batch)) => queue
            .finish(&batch, &Finish::Requeue, Utc::now(), Utc::now())
            .await
            .unwrap_or_else(|_| panic!("a claim that committed is finished")),
        Ok(_) => panic!("U0 has a due row"),
        Err(_) => {}
    }
    assert_eq!(
        queue.count(State::InFlight).await.unwrap(),
        0,
        "no row left in flight"
    );

    disk.free();
    let after = queue
        .enqueue(&status_update("t", Some("U9"), "after", ":x:", now), now)
        .await
        .expect("writes work again once space returns");
    let Claim::Send(batch) = queue.claim(&target("U0"), Utc::now()).await.unwrap() else {
        panic!("U0 is claimable again");
    };
    queue
        .finish(&batch, &Finish::Sent, Utc::now(), Utc::now())
        .await
        .unwrap();
    // Exactly the writes that said so are in the database.
    let ids: BTreeSet<i64> = queue
        .list(&[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    committed.push(after);
    assert_eq!(ids, committed.into_iter().collect::<BTreeSet<_>>());
    queue.close().await;
}

const TOKEN: &str = "xoxp-writepath";

/// The daemon on a full disk: firing fails while the disk is full, resumes within seconds when
/// space returns, and the daemon never stops running or leaves a row in flight. `set` on the
/// full disk exits 2 naming the database, and prints no id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_rides_out_a_full_disk_and_fires_again_when_space_returns() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let slack = FakeSlack::start(100, 100, Duration::from_secs(1), &[TOKEN]).await;
    let setup = Setup::new(
        &slack,
        &format!(
            "[limits]\nper_user = 100\nper_token = 100\nwindow = \"1s\"\n\
             [tokens.me]\ntoken = \"{TOKEN}\"\n\
             [[rules]]\nname = \"tick\"\ntoken = \"me\"\ncron = \"* * * * * *\"\n\
             status_text = \"tick\"\nstatus_emoji = \":clock1:\"\n"
        ),
    );
    // The database on the small disk: rewrite the config's `database` line.
    let text = std::fs::read_to_string(&setup.cfg).unwrap().replace(
        "database = \"queue.db\"",
        &format!(
            "database = {:?}",
            disk.path("queue.db").display().to_string()
        ),
    );
    setup.write_config(&text);
    let db = disk.path("queue.db");
    let log = setup.path("run.log");
    let mut child = setup.spawn("run.log", &[]);
    setup.wait_started("run.log").await;
    wait_for("a first firing sent", Duration::from_secs(10), || {
        !slack.received().is_empty()
    })
    .await;

    disk.fill();
    wait_for(
        "a write refused for lack of space",
        Duration::from_secs(30),
        || common::log_has(&log, "full"),
    )
    .await;
    let out = setup.cli(&["set", "--token", "me", "--text", "on a full disk"]);
    assert_eq!(out.status.code(), Some(2), "set on a full disk exits 2");
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "no row id printed"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&db.display().to_string()),
        "set names the database: {err}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );

    disk.free();
    let freed = Utc::now();
    let sent_before = slack.received().len();
    wait_for(
        "a firing after space returned, sent",
        Duration::from_secs(15),
        || slack.received().len() > sent_before + 1,
    )
    .await;
    let all = rows(&db).await;
    assert!(
        all.iter()
            .any(|r| r.fire_at > freed && r.state == State::Sent),
        "rules fire again once space returns"
    );
    assert!(
        all.iter()
            .all(|r| r.text_of_set() != Some("on a full disk")),
        "the refused set left no row"
    );
    common::stop(&mut child).await;
    assert_eq!(in_flight(&db).await, 0, "no row left in flight");
}

/// The database file deleted under the running daemon: rows written from then on would go to
/// a file nobody can open again. The daemon notices and exits 2 with a message saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_deleted_under_the_daemon_stops_it_with_exit_2() {
    let slack = FakeSlack::start(100, 100, Duration::from_secs(1), &[TOKEN]).await;
    let setup = Setup::new(
        &slack,
        &format!(
            "[tokens.me]\ntoken = \"{TOKEN}\"\n\
             [[rules]]\nname = \"tick\"\ntoken = \"me\"\ncron = \"* * * * * *\"\n\
             status_text = \"tick\"\n"
        ),
    );
    let mut child = setup.spawn("run.log", &[]);
    setup.wait_started("run.log").await;
    std::fs::remove_file(setup.db()).unwrap();
    let code = common::wait_exit(&mut child, Duration::from_secs(40)).await;
    assert_eq!(code, Some(2), "exit 2 so that systemd restarts it");
    let log = std::fs::read_to_string(setup.path("run.log")).unwrap();
    assert!(
        log.contains("deleted or replaced"),
        "the log says what happened: {log}"
    );
}

/// `queue` and `set` never take an empty file for a database (SQLite would): only `run` may
/// create one. Exit 2, the file untouched.
#[tokio::test]
async fn an_empty_file_is_not_a_queue_database() {
    let slack = FakeSlack::start(10, 10, Duration::from_secs(1), &[TOKEN]).await;
    let setup = Setup::new(&slack, &format!("[tokens.me]\ntoken = \"{TOKEN}\"\n"));
    std::fs::write(setup.db(), b"").unwrap();
    for args in [
        &["queue", "list"][..],
        &["set", "--token", "me", "--text", "x"],
    ] {
        let out = setup.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?} exits 2");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("empty file"), "{args:?}: {err}");
        assert_eq!(std::fs::metadata(setup.db()).unwrap().len(), 0, "untouched");
    }
}

/// The status text a row sets, if any.
trait TextOfSet {
    fn text_of_set(&self) -> Option<&str>;
}

impl TextOfSet for slack_statusd::queue::Update {
    fn text_of_set(&self) -> Option<&str> {
        self.patch.status.as_ref().map(|s| s.text.as_str())
    }
}
