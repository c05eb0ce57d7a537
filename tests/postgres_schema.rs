//! The PostgreSQL schema (SPEC §8) on a real server, a throwaway cluster of
//! `common::postgres`: the migrations apply from scratch, a rule's firing is enqueued once
//! whatever instance inserts it (the unique key), and a lease taken over gets a new epoch
//! that fences the old holder. The queue itself does not speak PostgreSQL yet (issue 16);
//! these hold the schema it will stand on.

mod common;

use std::path::Path;

use common::postgres::Cluster;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::Row;

async fn migrated(cluster: &Cluster) -> PgPool {
    let pool = PgPool::connect(&cluster.url()).await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let migrator = Migrator::new(dir.as_path()).await.unwrap();
    migrator.run(&pool).await.unwrap();
    // Applying again is a no-op: what every instance does at start.
    migrator.run(&pool).await.unwrap();
    pool
}

/// Insert the first row of `rule`'s firing at `fire_at`, as an instance's scheduler would,
/// ignoring a firing another instance already enqueued; the new row's id, if any.
async fn enqueue(pool: &PgPool, rule: &str, fire_at: i64) -> Option<i64> {
    sqlx::query_scalar(
        "INSERT INTO updates (rule, token, fire_at, patch, state, not_before, created_at, updated_at)
         VALUES ($1, 'me', $2, '{}', 'pending', $2, $2, $2)
         ON CONFLICT (rule, fire_at)
             WHERE rule IS NOT NULL AND parent IS NULL AND saved IS NULL
               AND NOT (state = 'superseded' AND coalesce(last_error, '') IN ('config_changed', 'missed'))
         DO NOTHING RETURNING id",
    )
    .bind(rule)
    .bind(fire_at)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_schema_enqueues_a_firing_once_and_fences_a_lease_by_epoch() {
    let cluster = Cluster::start();
    let pool = migrated(&cluster).await;

    // Two instances schedule the same firing: one row.
    let first = enqueue(&pool, "coffee", 1_000).await;
    assert!(first.is_some());
    assert_eq!(enqueue(&pool, "coffee", 1_000).await, None, "enqueued once");
    assert!(
        enqueue(&pool, "coffee", 2_000).await.is_some(),
        "the next instant is another firing"
    );
    // A rewind supersedes it (its rule changed): the new version takes the instant.
    sqlx::query(
        "UPDATE updates SET state = 'superseded', last_error = 'config_changed' WHERE id = $1",
    )
    .bind(first)
    .execute(&pool)
    .await
    .unwrap();
    assert!(
        enqueue(&pool, "coffee", 1_000).await.is_some(),
        "after a rewind"
    );
    // A merge that superseded it does not free the instant.
    sqlx::query("UPDATE updates SET state = 'superseded', last_error = NULL WHERE rule = 'coffee' AND fire_at = 2000")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(enqueue(&pool, "coffee", 2_000).await, None);

    // A lease: taken when free or expired (by the database's clock), each holding a new epoch.
    let take = |holder: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO leases (name, holder, epoch, expires_at)
                 VALUES ('token:me', $1, 1, now() + interval '15 seconds')
                 ON CONFLICT (name) DO UPDATE
                     SET holder = excluded.holder, epoch = leases.epoch + 1,
                         expires_at = excluded.expires_at
                     WHERE leases.expires_at < now() OR leases.holder = excluded.holder
                 RETURNING epoch",
            )
            .bind(holder)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .map(|r| r.get::<i64, _>("epoch"))
        }
    };
    assert_eq!(take("a").await, Some(1));
    assert_eq!(take("b").await, None, "held by a, not expired");
    sqlx::query("UPDATE leases SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        take("b").await,
        Some(2),
        "expired: b takes it with a new epoch"
    );
    // The old holder's claim, fenced by its epoch in the same statement, takes nothing.
    let fenced = |holder: &'static str, epoch: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "UPDATE updates SET state = 'in_flight'
                 WHERE token = 'me' AND state = 'pending'
                   AND EXISTS (SELECT 1 FROM leases
                               WHERE name = 'token:me' AND holder = $1 AND epoch = $2)",
            )
            .bind(holder)
            .bind(epoch)
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected()
        }
    };
    assert_eq!(fenced("a", 1).await, 0, "a lost the lease");
    assert_eq!(fenced("b", 2).await, 1, "b holds it");
    pool.close().await;
}
