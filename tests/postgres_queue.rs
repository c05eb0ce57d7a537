//! The queue's worker path on PostgreSQL (SPEC §8), on a real server (a throwaway cluster
//! of `common::postgres`): several instances enqueue a rule's firing once, claims and
//! finishes are fenced by the lease's epoch, and an instance that takes a token over rescues
//! the rows its dead holder left `in_flight` — logged as sent at their claim, so that the
//! shared send log the new holder's windows are rebuilt from counts them.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::postgres::Cluster;
use slack_statusd::config::{load_str, Database, Postgres};
use slack_statusd::profile::{Dnd, Patch, Status};
use slack_statusd::queue::postgres::{token_lease, PgQueue};
use slack_statusd::queue::{Advance, Claim, Finish, NewUpdate, QueueError, Target};

const LEASE: Duration = Duration::from_secs(15);

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn config(url: &str, extra: &str) -> Postgres {
    let c = load_str(
        Path::new("/srv/config.toml"),
        &format!("database = {url:?}\n{extra}"),
    )
    .unwrap();
    let Database::Postgres(pg) = c.database else {
        panic!("a PostgreSQL database: {:?}", c.database);
    };
    pg
}

fn target(user: &str) -> Target {
    Target {
        token: "admin".into(),
        user: Some(user.into()),
    }
}

fn status(rule: Option<&str>, user: &str, at: DateTime<Utc>, text: &str) -> NewUpdate {
    NewUpdate {
        rule: rule.map(str::to_string),
        target: target(user),
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

/// A raw connection to the cluster, for what only a test does: expire a lease early, look at
/// the rows.
async fn raw(cluster: &Cluster) -> sqlx::PgPool {
    sqlx::PgPool::connect(&cluster.url()).await.unwrap()
}

#[tokio::test]
async fn two_instances_enqueue_a_firing_once_with_its_parts() {
    let cluster = Cluster::start();
    let pg = config(&cluster.url(), "");
    let (a, b) = (
        PgQueue::open(&pg).await.unwrap(),
        PgQueue::open(&pg).await.unwrap(),
    );
    assert_eq!(a.shown(), "postgres://127.0.0.1");

    // Both instances schedule the 9:00 firing of `coffee` (a status and a snooze: two rows).
    let mut firing = status(Some("coffee"), "U1", t(0), "Coffee");
    firing.patch.dnd = Some(Dnd::Snooze {
        until: t(3600).timestamp(),
    });
    let advance = Advance {
        rule: "coffee".into(),
        until: t(0),
        fingerprint: Some(7),
        firing: Some(firing),
    };
    let (x, y) = tokio::join!(
        a.advance_rules(std::slice::from_ref(&advance), t(-2)),
        b.advance_rules(std::slice::from_ref(&advance), t(-2))
    );
    let ids: Vec<Option<i64>> = [x.unwrap(), y.unwrap()].concat();
    assert_eq!(
        ids.iter().flatten().count(),
        1,
        "enqueued by exactly one instance: {ids:?}"
    );
    let db = raw(&cluster).await;
    let rows: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, parent FROM updates ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    let first = ids.iter().flatten().copied().next().unwrap();
    assert_eq!(
        rows,
        vec![(first, None), (first + 1, Some(first))],
        "status, then its snooze part"
    );
    // Again, past the mark: nothing.
    assert_eq!(
        a.advance_rules(&[advance], t(-1)).await.unwrap(),
        vec![None]
    );
    let mark: (i64, Option<i64>) =
        sqlx::query_as("SELECT scheduled_until, fingerprint FROM rule_marks WHERE rule = 'coffee'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(mark, (t(0).timestamp_millis(), Some(7)));

    // `set` rows have no rule: each is its own.
    let s1 = a
        .enqueue(&status(None, "U2", t(5), "Lunch"), t(5))
        .await
        .unwrap();
    let s2 = b
        .enqueue(&status(None, "U2", t(5), "Lunch"), t(5))
        .await
        .unwrap();
    assert_ne!(s1, s2);
    // Per target, the first row in firing order decides when it is ready.
    let ready = a.ready_targets("admin").await.unwrap();
    let at: Vec<(Option<String>, DateTime<Utc>)> = ready
        .into_iter()
        .map(|r| (r.target.user, r.ready_at))
        .collect();
    assert_eq!(
        at,
        vec![(Some("U1".into()), t(0)), (Some("U2".into()), t(5))]
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn claims_and_finishes_are_fenced_and_a_takeover_rescues_the_rows_left_in_flight() {
    let cluster = Cluster::start();
    let pg = config(&cluster.url(), "");
    let (a, b) = (
        PgQueue::open(&pg).await.unwrap(),
        PgQueue::open(&pg).await.unwrap(),
    );
    let db = raw(&cluster).await;
    let lease = token_lease("admin");

    let first = a
        .enqueue(&status(None, "U1", t(0), "One"), t(0))
        .await
        .unwrap();
    a.enqueue(&status(None, "U1", t(1), "Two"), t(1))
        .await
        .unwrap();

    let held = a
        .take_lease(&lease, Some("admin"), "instance-a", LEASE, t(1))
        .await
        .unwrap()
        .expect("a free lease");
    assert_eq!((held.fence.epoch, held.rescued), (1, 0));
    assert_eq!(
        b.take_lease(&lease, Some("admin"), "instance-b", LEASE, t(1))
            .await
            .unwrap(),
        None,
        "held by a and not expired"
    );
    assert!(
        a.renew_lease(&held.fence, LEASE).await.unwrap(),
        "a renews its own lease"
    );

    // a claims both rows of U1 (merged: the newer status wins), then dies before its finish.
    let Claim::Send(batch) = a
        .claim_under(&target("U1"), t(2), &held.fence)
        .await
        .unwrap()
    else {
        panic!("a claim with something to send");
    };
    assert_eq!(
        batch.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![first, first + 1]
    );
    assert_eq!(batch.plan.patch.status.as_ref().unwrap().text, "Two");
    assert_eq!(batch.plan.superseded, vec![first]);

    // Its lease runs out (by the database's clock); b takes the token over.
    sqlx::query("UPDATE leases SET expires_at = now() - interval '1 second'")
        .execute(&db)
        .await
        .unwrap();
    let taken = b
        .take_lease(&lease, Some("admin"), "instance-b", LEASE, t(20))
        .await
        .unwrap()
        .expect("an expired lease");
    assert_eq!(
        (taken.fence.epoch, taken.rescued),
        (2, 2),
        "both rows rescued"
    );
    // The request a may have sent is in the shared log, at a's claim.
    let sends = b.sends_since("admin", t(0)).await.unwrap();
    assert_eq!(
        sends,
        vec![(
            "users.profile.set".to_string(),
            Some("U1".to_string()),
            t(2)
        )]
    );

    // a comes back: its finish and its next claim are refused, and change nothing.
    let lost = a
        .finish_under(&batch, &Finish::Sent, t(2), t(3), &held.fence)
        .await;
    assert!(
        matches!(lost, Err(QueueError::LeaseLost(ref n)) if n == "token:admin"),
        "{lost:?}"
    );
    assert!(matches!(
        a.claim_under(&target("U1"), t(21), &held.fence).await,
        Err(QueueError::LeaseLost(_))
    ));

    assert!(
        !a.renew_lease(&held.fence, LEASE).await.unwrap(),
        "a cannot renew the lease b holds"
    );
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM updates ORDER BY id")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(states, ["pending", "pending"]);

    // b sends them: one request, logged beside a's.
    let Claim::Send(batch) = b
        .claim_under(&target("U1"), t(21), &taken.fence)
        .await
        .unwrap()
    else {
        panic!("b claims the rescued rows");
    };
    b.finish_under(&batch, &Finish::Sent, t(21), t(22), &taken.fence)
        .await
        .unwrap();
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM updates ORDER BY id")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(states, ["superseded", "sent"]);
    assert_eq!(b.sends_since("admin", t(0)).await.unwrap().len(), 2);
    assert!(matches!(
        b.claim_under(&target("U1"), t(23), &taken.fence)
            .await
            .unwrap(),
        Claim::NotReady
    ));

    // A clean stop gives the lease up at once; the next holder's epoch is higher still.
    b.release_lease(&taken.fence).await.unwrap();
    let next = a
        .take_lease(&lease, Some("admin"), "instance-a2", LEASE, t(30))
        .await
        .unwrap()
        .expect("a released lease");
    assert_eq!((next.fence.epoch, next.rescued), (3, 0));
}

#[tokio::test]
async fn a_missing_password_file_and_a_newer_schema_are_clear_errors() {
    let cluster = Cluster::start();
    let e = PgQueue::open(&config(
        &cluster.url(),
        "database_password_file = \"/nonexistent/pg.pass\"\n",
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "database_password_file /nonexistent/pg.pass: no such file; create it (the secret on its first line) or fix the path"
    );

    let pg = config(&cluster.url(), "");
    PgQueue::open(&pg).await.unwrap().close().await;
    let db = raw(&cluster).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (29991231000001, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&db)
    .await
    .unwrap();
    let e = PgQueue::open(&pg).await.unwrap_err();
    assert!(
        matches!(
            e,
            QueueError::NewerSchema {
                version: 29991231000001,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the queue database postgres://127.0.0.1 has a newer schema than this slack-statusd knows (migration 29991231000001); upgrade slack-statusd or point `database` elsewhere"
    );
}
