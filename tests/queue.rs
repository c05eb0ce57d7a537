//! The queue over a real SQLite file: claims, merge, firing order, retries, holds, recovery.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use slack_statusd::profile::{Patch, Status};
use slack_statusd::queue::{Claim, Finish, NewUpdate, Queue, QueueError, State, Target};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn target(token: &str, user: Option<&str>) -> Target {
    Target {
        token: token.into(),
        user: user.map(str::to_string),
    }
}

fn status_update(tgt: &Target, at: DateTime<Utc>, text: &str) -> NewUpdate {
    NewUpdate {
        rule: Some(format!("rule-{text}")),
        target: tgt.clone(),
        fire_at: at,
        patch: Patch {
            status: Some(Status {
                text: text.into(),
                emoji: ":x:".into(),
                expiration: 0,
            }),
            ..Patch::default()
        },
        respect_manual: false,
        restore: false,
    }
}

async fn open() -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(&dir.path().join("queue.db"), true)
        .await
        .unwrap();
    (dir, q)
}

async fn state(q: &Queue, id: i64) -> State {
    q.get(id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn open_without_create_never_makes_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let err = Queue::open(&path, false).await.unwrap_err();
    assert!(matches!(err, QueueError::Missing(_)));
    assert!(err.to_string().contains("none.db"), "{err}");
    assert!(!path.exists());
}

#[tokio::test]
async fn due_rows_of_one_target_merge_into_one_request_in_firing_order() {
    let (_d, q) = open().await;
    let alice = target("admin", Some("U1"));
    let a = q
        .enqueue(&status_update(&alice, t(0), "first"), t(0))
        .await
        .unwrap();
    let mut title = status_update(&alice, t(1), "unused");
    title.patch = Patch::default();
    title.patch.fields.insert("title".into(), json!("Barista"));
    let b = q.enqueue(&title, t(1)).await.unwrap();
    let c = q
        .enqueue(&status_update(&alice, t(2), "second"), t(2))
        .await
        .unwrap();

    let Claim::Send(batch) = q.claim(&alice, t(3)).await.unwrap() else {
        panic!("expected a send")
    };
    assert_eq!(
        batch.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![a, b, c]
    );
    assert_eq!(batch.plan.patch.status.as_ref().unwrap().text, "second");
    assert_eq!(batch.plan.patch.fields["title"], json!("Barista"));
    for id in [a, b, c] {
        assert_eq!(state(&q, id).await, State::InFlight);
    }
    q.finish(&batch, &Finish::Sent, t(4), t(4)).await.unwrap();
    assert_eq!(state(&q, a).await, State::Superseded);
    assert_eq!(state(&q, b).await, State::Sent);
    assert_eq!(state(&q, c).await, State::Sent);
    assert_eq!(q.claim(&alice, t(5)).await.unwrap(), Claim::NotReady);
}

#[tokio::test]
async fn a_status_expired_before_its_turn_is_not_sent() {
    let (_d, q) = open().await;
    let me = target("me", None);
    let mut u = status_update(&me, t(0), "short");
    u.patch.status.as_mut().unwrap().expiration = t(10).timestamp();
    let id = q.enqueue(&u, t(0)).await.unwrap();
    let Claim::NothingToSend(batch) = q.claim(&me, t(10)).await.unwrap() else {
        panic!("nothing to send")
    };
    assert_eq!(batch.plan.expired, vec![id]);
    // Claimed like any row until the caller finishes it: nothing can overtake it meanwhile.
    assert_eq!(state(&q, id).await, State::InFlight);
    q.finish(&batch, &Finish::NotSent, t(10), t(10))
        .await
        .unwrap();
    assert_eq!(state(&q, id).await, State::Expired);
    assert!(
        q.sends_since("me", t(0)).await.unwrap().is_empty(),
        "no request started, so none is logged for the throttle"
    );
}

#[tokio::test]
async fn a_firing_is_never_enqueued_twice_even_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let tgt = target("me", None);
    let u = status_update(&tgt, t(100), "x");
    {
        let q = Queue::open(&path, true).await.unwrap();
        assert!(q
            .advance_rule("r", t(100), Some(&u), t(100))
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            q.advance_rule("r", t(100), Some(&u), t(101)).await.unwrap(),
            None
        );
        q.close().await;
    }
    let q = Queue::open(&path, true).await.unwrap();
    assert_eq!(
        q.rule_marks().await.unwrap().get("r").map(|m| m.until),
        Some(t(100))
    );
    assert_eq!(
        q.advance_rule("r", t(200), Some(&u), t(200)).await.unwrap(),
        None
    );
    // The mark never moves backward.
    q.advance_rule("r", t(50), None, t(201)).await.unwrap();
    assert_eq!(
        q.rule_marks().await.unwrap().get("r").map(|m| m.until),
        Some(t(200))
    );
    assert_eq!(q.list(&[]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn rows_in_flight_at_a_crash_are_pending_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let tgt = target("me", None);
    let id;
    {
        let q = Queue::open(&path, true).await.unwrap();
        id = q
            .enqueue(&status_update(&tgt, t(0), "x"), t(0))
            .await
            .unwrap();
        assert!(matches!(q.claim(&tgt, t(1)).await.unwrap(), Claim::Send(_)));
        // No finish: the process "dies" here.
        q.close().await;
    }
    let q = Queue::open(&path, true).await.unwrap();
    assert_eq!(state(&q, id).await, State::InFlight);
    assert_eq!(q.recover_in_flight(t(2)).await.unwrap(), 1);
    assert_eq!(state(&q, id).await, State::Pending);
    assert_eq!(q.get(id).await.unwrap().unwrap().attempts, 0);
    // The request may have reached Slack: the throttle counts it from its claim.
    assert_eq!(
        q.sends_since("me", t(0)).await.unwrap(),
        vec![set_start(None, t(1))]
    );
}

#[tokio::test]
async fn transient_failures_back_off_then_fail_after_max_attempts() {
    let (_d, q) = open().await;
    let tgt = target("me", None);
    let id = q
        .enqueue(&status_update(&tgt, t(0), "x"), t(0))
        .await
        .unwrap();
    for attempt in 1..=3u32 {
        let now = t(100 * attempt as i64);
        let Claim::Send(batch) = q.claim(&tgt, now).await.unwrap() else {
            panic!("attempt {attempt}")
        };
        let retry_at = now + TimeDelta::seconds(10);
        let retry = Finish::Retry {
            error: "HTTP 503".into(),
            retry_at,
            max_attempts: 3,
        };
        q.finish(&batch, &retry, now, now).await.unwrap();
        let row = q.get(id).await.unwrap().unwrap();
        assert_eq!(row.attempts, attempt);
        assert_eq!(row.last_error.as_deref(), Some("HTTP 503"));
        if attempt < 3 {
            assert_eq!(row.state, State::Pending);
            assert_eq!(
                q.claim(&tgt, now + TimeDelta::seconds(5)).await.unwrap(),
                Claim::NotReady,
                "backoff holds"
            );
        } else {
            assert_eq!(row.state, State::Failed);
        }
    }
}

#[tokio::test]
async fn a_dead_token_holds_its_other_rows_only() {
    let (_d, q) = open().await;
    let (a1, a2, b) = (
        target("a", Some("U1")),
        target("a", Some("U2")),
        target("b", Some("U1")),
    );
    let first = q
        .enqueue(&status_update(&a1, t(0), "x"), t(0))
        .await
        .unwrap();
    let other = q
        .enqueue(&status_update(&a2, t(0), "y"), t(0))
        .await
        .unwrap();
    let unrelated = q
        .enqueue(&status_update(&b, t(0), "z"), t(0))
        .await
        .unwrap();
    let Claim::Send(batch) = q.claim(&a1, t(1)).await.unwrap() else {
        panic!()
    };
    let dead = Finish::FailAndHoldToken {
        error: "invalid_auth".into(),
    };
    q.finish(&batch, &dead, t(1), t(1)).await.unwrap();
    assert_eq!(state(&q, first).await, State::Failed);
    assert_eq!(
        q.get(first).await.unwrap().unwrap().last_error.as_deref(),
        Some("invalid_auth")
    );
    assert_eq!(state(&q, other).await, State::Held);
    assert_eq!(state(&q, unrelated).await, State::Pending);
    assert!(q.ready_targets("a").await.unwrap().is_empty());
    assert_eq!(q.release_held(Some("a"), t(2)).await.unwrap(), 1);
    assert_eq!(state(&q, other).await, State::Pending);
}

#[tokio::test]
async fn rows_of_a_removed_token_fail_with_token_removed() {
    let (_d, q) = open().await;
    let gone = q
        .enqueue(&status_update(&target("gone", None), t(0), "x"), t(0))
        .await
        .unwrap();
    let kept = q
        .enqueue(&status_update(&target("kept", None), t(0), "y"), t(0))
        .await
        .unwrap();
    assert_eq!(
        q.fail_removed_tokens(&["kept".into()], t(1)).await.unwrap(),
        1
    );
    let row = q.get(gone).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.last_error.as_deref()),
        (State::Failed, Some("token_removed"))
    );
    assert_eq!(state(&q, kept).await, State::Pending);
}

#[tokio::test]
async fn request_starts_are_logged_for_rebuilding_windows() {
    let (_d, q) = open().await;
    let (u1, me) = (target("a", Some("U1")), target("a", None));
    for (i, tgt) in [&u1, &me, &u1].into_iter().enumerate() {
        q.enqueue(&status_update(tgt, t(i as i64), "x"), t(i as i64))
            .await
            .unwrap();
        let Claim::Send(batch) = q.claim(tgt, t(i as i64)).await.unwrap() else {
            panic!()
        };
        q.finish(&batch, &Finish::Sent, t(i as i64), t(i as i64))
            .await
            .unwrap();
    }
    let sends = q.sends_since("a", t(1)).await.unwrap();
    assert_eq!(
        sends,
        vec![set_start(None, t(1)), set_start(Some("U1"), t(2))]
    );
    assert!(q.sends_since("b", t(0)).await.unwrap().is_empty());
}

#[tokio::test]
async fn purge_deletes_only_old_finished_rows() {
    let (_d, q) = open().await;
    let tgt = target("a", None);
    let old = q
        .enqueue(&status_update(&tgt, t(0), "x"), t(0))
        .await
        .unwrap();
    let Claim::Send(batch) = q.claim(&tgt, t(0)).await.unwrap() else {
        panic!()
    };
    q.finish(&batch, &Finish::Sent, t(0), t(0)).await.unwrap();
    let pending = q
        .enqueue(&status_update(&tgt, t(1), "y"), t(1))
        .await
        .unwrap();
    assert_eq!(q.purge(t(10), t(10)).await.unwrap(), 1);
    assert!(q.get(old).await.unwrap().is_none());
    assert!(q.get(pending).await.unwrap().is_some());
}

#[tokio::test]
async fn finish_moves_the_logged_start_to_the_real_start() {
    let (_d, q) = open().await;
    let tgt = target("a", None);
    q.enqueue(&status_update(&tgt, t(0), "x"), t(0))
        .await
        .unwrap();
    let Claim::Send(batch) = q.claim(&tgt, t(0)).await.unwrap() else {
        panic!()
    };
    // The claim's commit took a while: the request really started at t(1).
    q.finish(&batch, &Finish::Sent, t(1), t(2)).await.unwrap();
    assert_eq!(
        q.sends_since("a", t(0)).await.unwrap(),
        vec![set_start(None, t(1))]
    );
}

#[test]
fn side_files_made_by_root_are_given_to_the_databases_owner() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    std::fs::write(&db, b"").unwrap();
    let wal = dir.path().join("q.db-wal");
    std::fs::write(&wal, b"").unwrap();
    if std::fs::metadata(&db).unwrap().uid() != 0 {
        eprintln!("not root: nothing to hand over, checking the no-op");
        slack_statusd::queue::match_owner(&db).unwrap();
        return;
    }
    // The service's user (nobody) owns the database; root just made its -wal file.
    std::os::unix::fs::chown(&db, Some(65534), Some(65534)).unwrap();
    slack_statusd::queue::match_owner(&db).unwrap();
    let m = std::fs::metadata(&wal).unwrap();
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_and_finishes_each_get_their_own_rows() {
    let (_d, q) = open().await;
    // A thousand callers at once, through the one writer, as at a 9:00 with 1,000 tokens.
    let n = 1000;
    let mut ids = Vec::new();
    for i in 0..n {
        let tgt = target(&format!("tok{i}"), Some(&format!("U{i}")));
        // Two rows per target; the second merges into the same request.
        let a = q
            .enqueue(&status_update(&tgt, t(0), &format!("a{i}")), t(0))
            .await
            .unwrap();
        let b = q
            .enqueue(&status_update(&tgt, t(1), &format!("b{i}")), t(1))
            .await
            .unwrap();
        ids.push((tgt, a, b));
    }
    // Every target claims, sends and finishes at the same time, as workers at one firing do.
    let mut tasks = Vec::new();
    for (tgt, a, b) in ids.clone() {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let Claim::Send(batch) = q.claim(&tgt, t(2)).await.unwrap() else {
                panic!("{tgt} was not claimed")
            };
            let got: Vec<i64> = batch.rows.iter().map(|r| r.id).collect();
            assert_eq!(got, vec![a, b], "{tgt} got its own rows, in firing order");
            assert!(batch.rows.iter().all(|r| r.target == tgt));
            assert_eq!(batch.plan.contributors, vec![b]);
            q.finish(&batch, &Finish::Sent, t(3), t(4)).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for (tgt, a, b) in ids {
        assert_eq!(state(&q, a).await, State::Superseded);
        assert_eq!(state(&q, b).await, State::Sent);
        let user = tgt.user.clone();
        assert_eq!(
            q.sends_since(&tgt.token, t(0)).await.unwrap(),
            vec![set_start(user.as_deref(), t(3))]
        );
    }
}

#[tokio::test]
async fn a_row_with_an_unreadable_patch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let q = Queue::open(&path, true).await.unwrap();
    let tgt = target("me", None);
    let good = q
        .enqueue(&status_update(&tgt, t(0), "good"), t(0))
        .await
        .unwrap();
    let bad = q
        .enqueue(&status_update(&tgt, t(1), "bad"), t(1))
        .await
        .unwrap();
    // Someone edits the database by hand.
    let pool = sqlx::SqlitePool::connect_with(slack_statusd::queue::connect_options(&path))
        .await
        .unwrap();
    sqlx::query("UPDATE updates SET patch = '{not json' WHERE id = ?")
        .bind(bad)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let Claim::Send(batch) = q.claim(&tgt, t(2)).await.unwrap() else {
        panic!("the readable row should still go out")
    };
    assert_eq!(
        batch.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![good]
    );
    assert_eq!(
        batch
            .unreadable
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        vec![bad]
    );
    // Whatever becomes of the request, the unreadable row fails with it.
    q.finish(&batch, &Finish::Requeue, t(2), t(2))
        .await
        .unwrap();
    let row = q.get(bad).await;
    assert!(row.is_err(), "the bad row still cannot be read: {row:?}");
    let failed = q.count(State::Failed).await.unwrap();
    assert_eq!(
        failed, 1,
        "the unreadable row failed instead of blocking its target"
    );
}

#[tokio::test]
async fn advancing_many_rules_enqueues_only_firings_past_each_mark_in_order() {
    use slack_statusd::queue::Advance;
    let (_d, q) = open().await;
    let tgt = target("me", None);
    let advance = |rule: &str, at: i64, text: Option<&str>| Advance {
        rule: rule.into(),
        until: t(at),
        fingerprint: None,
        firing: text.map(|x| NewUpdate {
            rule: Some(rule.into()),
            ..status_update(&tgt, t(at), x)
        }),
    };
    // r2 was already scheduled up to t(10).
    q.advance_rules(&[advance("r2", 10, None)], t(10))
        .await
        .unwrap();
    let ids = q
        .advance_rules(
            &[
                advance("r1", 5, Some("one")),
                advance("r2", 5, Some("two: at or before its mark")),
                advance("r3", 6, None),
                advance("r4", 7, Some("four")),
            ],
            t(11),
        )
        .await
        .unwrap();
    assert!(ids[0].is_some() && ids[1].is_none() && ids[2].is_none() && ids[3].is_some());
    let one = q.get(ids[0].unwrap()).await.unwrap().unwrap();
    let four = q.get(ids[3].unwrap()).await.unwrap().unwrap();
    assert_eq!((one.rule.as_deref(), one.fire_at), (Some("r1"), t(5)));
    assert_eq!((four.rule.as_deref(), four.fire_at), (Some("r4"), t(7)));
    let marks = q.rule_marks().await.unwrap();
    assert_eq!(marks["r2"].until, t(10), "a mark never moves backward");
    assert_eq!(marks["r3"].until, t(6));
}

#[tokio::test]
async fn a_claim_takes_only_the_rows_due_by_then() {
    // A calendar queues its changes ahead: tomorrow's meeting must not merge into the status
    // sent now, and goes out on its own when its time comes.
    let (_d, q) = open().await;
    let me = target("me", None);
    let now = q
        .enqueue(&status_update(&me, t(0), "now"), t(0))
        .await
        .unwrap();
    let later = q
        .enqueue(&status_update(&me, t(100), "later"), t(0))
        .await
        .unwrap();
    let Claim::Send(batch) = q.claim(&me, t(1)).await.unwrap() else {
        panic!("the first row is due")
    };
    assert_eq!(
        batch.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![now]
    );
    q.finish(&batch, &Finish::Sent, t(1), t(1)).await.unwrap();
    assert_eq!(state(&q, later).await, State::Pending);
    assert_eq!(q.claim(&me, t(99)).await.unwrap(), Claim::NotReady);
    let Claim::Send(batch) = q.claim(&me, t(100)).await.unwrap() else {
        panic!("the second row is due")
    };
    assert_eq!(
        batch.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![later]
    );
}

/// A logged `users.profile.set` start, as `sends_since` returns it.
fn set_start(user: Option<&str>, at: DateTime<Utc>) -> (String, Option<String>, DateTime<Utc>) {
    ("users.profile.set".into(), user.map(str::to_string), at)
}

/// A DND or presence call cut off by a crash counts in its own method's window after the
/// restart, as a profile update counts in the profile's.
#[tokio::test]
async fn a_part_in_flight_at_a_crash_is_logged_under_its_own_method() {
    use slack_statusd::profile::{Dnd, Presence};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let tgt = target("me", None);
    {
        let q = Queue::open(&path, true).await.unwrap();
        let mut u = status_update(&tgt, t(0), "x");
        u.patch.dnd = Some(Dnd::Snooze {
            until: 10_000_000_000,
        });
        u.patch.presence = Some(Presence::Away);
        q.enqueue(&u, t(0)).await.unwrap();
        assert!(matches!(q.claim(&tgt, t(1)).await.unwrap(), Claim::Send(_)));
        q.close().await;
    }
    let q = Queue::open(&path, true).await.unwrap();
    assert_eq!(
        q.recover_in_flight(t(2)).await.unwrap(),
        3,
        "three parts, three rows"
    );
    let mut methods: Vec<String> = q
        .sends_since("me", t(0))
        .await
        .unwrap()
        .into_iter()
        .map(|(m, _, _)| m)
        .collect();
    methods.sort();
    assert_eq!(
        methods,
        ["dnd.setSnooze", "users.profile.set", "users.setPresence"]
    );
}

#[tokio::test]
async fn a_rewind_supersedes_unsent_firings_and_never_moves_a_mark_before_one_that_went_further() {
    use slack_statusd::queue::{Advance, CONFIG_CHANGED};
    let (_d, q) = open().await;
    let me = target("me", None);
    let ahead = |rule: &str, at: i64| Advance {
        rule: rule.into(),
        until: t(at),
        fingerprint: Some(1),
        firing: Some(NewUpdate {
            rule: Some(rule.into()),
            ..status_update(&me, t(at), rule)
        }),
    };
    // "claimed" went out (it is in flight); "held" waits behind a dead token.
    let ids = q
        .advance_rules(&[ahead("claimed", 10)], t(9))
        .await
        .unwrap();
    assert!(matches!(q.claim(&me, t(10)).await.unwrap(), Claim::Send(_)));
    let other = target("dead", None);
    q.advance_rules(
        &[Advance {
            firing: Some(NewUpdate {
                rule: Some("held".into()),
                ..status_update(&other, t(10), "held")
            }),
            ..ahead("held", 10)
        }],
        t(9),
    )
    .await
    .unwrap();
    q.hold_token("dead", "invalid_auth", t(9)).await.unwrap();

    let (superseded, marks) = q
        .rewind_rules(
            &[("claimed".into(), t(5)), ("held".into(), t(5))],
            CONFIG_CHANGED,
            t(9),
        )
        .await
        .unwrap();
    assert_eq!(superseded, 1, "the held row; the claimed one went further");
    assert_eq!(marks["claimed"], t(10), "not before the firing in flight");
    assert_eq!(marks["held"], t(5));
    let claimed = q.get(ids[0].unwrap()).await.unwrap().unwrap();
    assert_eq!(claimed.state, State::InFlight);
    assert_eq!(q.count(State::Held).await.unwrap(), 0);
    // The rule that went further is not enqueued again at its instant.
    assert_eq!(
        q.advance_rules(&[ahead("claimed", 10)], t(9))
            .await
            .unwrap(),
        vec![None]
    );
}
