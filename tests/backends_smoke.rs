//! The one interface over both backends: a row enqueued on either reads back the same.

mod common;

use chrono::{DateTime, Utc};
use slack_statusd::profile::{Patch, Status};
use slack_statusd::queue::{NewUpdate, Target};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

on_both_backends! {
    async fn a_row_enqueued_reads_back(q: &Queue) {
        let update = NewUpdate {
            rule: None,
            target: Target { token: "admin".into(), user: Some("U1".into()) },
            fire_at: t(1),
            patch: Patch {
                status: Some(Status { text: "Lunch".into(), emoji: ":x:".into(), expiration: 0 }),
                ..Patch::default()
            },
            respect_manual: false,
            restore: false,
        };
        let id = q.enqueue(&update, t(0)).await.unwrap();
        let ready = q.ready_targets("admin").await.unwrap();
        assert_eq!(ready.len(), 1, "one target is ready");
        assert_eq!(ready[0].target.user.as_deref(), Some("U1"));
        assert!(id > 0);
    }
}
