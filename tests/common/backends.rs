//! The queue's tests on both backends (SPEC §8): a test written once, with
//! [`on_both_backends!`], runs on a fresh SQLite file and on a fresh PostgreSQL cluster, so
//! that "everything that works on SQLite works on PostgreSQL" is checked statement by
//! statement rather than assumed.

use std::path::Path;

use slack_statusd::config::{load_str, Database};
use slack_statusd::queue::Queue;

use super::postgres::Cluster;

/// A queue open on one backend, with whatever keeps that backend alive.
pub struct TestQueue {
    /// The queue.
    pub queue: Queue,
    /// `"sqlite"` or `"postgres"`, for messages.
    pub backend: &'static str,
    _dir: tempfile::TempDir,
    _cluster: Option<Cluster>,
}

/// A new SQLite queue in a temporary folder.
pub async fn sqlite() -> TestQueue {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("queue.db"), true)
        .await
        .unwrap();
    TestQueue {
        queue,
        backend: "sqlite",
        _dir: dir,
        _cluster: None,
    }
}

/// The `database` of a config naming `url` (with `extra` config lines, such as `lease`).
pub fn postgres_database(url: &str, extra: &str) -> Database {
    load_str(
        Path::new("/srv/config.toml"),
        &format!("database = {url:?}\n{extra}"),
    )
    .unwrap()
    .database
}

/// A new queue on a throwaway PostgreSQL cluster (panics, saying what to install, without
/// a server).
pub async fn postgres() -> TestQueue {
    let cluster = Cluster::start();
    let queue = Queue::connect(&postgres_database(&cluster.url(), ""), true)
        .await
        .unwrap();
    TestQueue {
        queue,
        backend: "postgres",
        _dir: tempfile::tempdir().unwrap(),
        _cluster: Some(cluster),
    }
}

/// `async fn name(q: &Queue) { … }` once, as two tests: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($(
        $(#[$attr:meta])*
        async fn $name:ident($q:ident: &Queue) $body:block
    )*) => {
        $(
            $(#[$attr])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($q: &slack_statusd::queue::Queue) $body

                #[tokio::test]
                async fn sqlite() {
                    let t = crate::common::backends::sqlite().await;
                    body(&t.queue).await;
                }

                #[tokio::test]
                async fn postgres() {
                    let t = crate::common::backends::postgres().await;
                    body(&t.queue).await;
                }
            }
        )*
    };
}
