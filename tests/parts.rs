//! Do Not Disturb and presence (SPEC §6): a firing's parts go out after its profile update,
//! each with its own outcome, through the worker, a real SQLite file and the fake Slack, on a
//! test clock that jumps ahead instead of waiting.

mod common;

use serde_json::json;
use slack_statusd::profile::{Dnd, Part, Patch, Presence, Status};
use slack_statusd::queue::{NewUpdate, State, Target, Update};

use common::ClockRig as Rig;

async fn rig() -> Rig {
    Rig::new().await
}

/// A focus block: a status until `until_min`, with DND and presence as given.
fn focus(rig: &Rig, until_min: i64, dnd: Option<Dnd>, presence: Option<Presence>) -> NewUpdate {
    NewUpdate {
        rule: Some("focus".into()),
        target: Target {
            token: "a".into(),
            user: None,
        },
        fire_at: rig.start,
        patch: Patch {
            status: Some(Status {
                text: "Focus".into(),
                emoji: ":headphones:".into(),
                expiration: rig.at(until_min).timestamp(),
            }),
            dnd,
            presence,
            ..Patch::default()
        },
        respect_manual: false,
        restore: false,
    }
}

impl Rig {
    async fn enqueue(&self, u: &NewUpdate) -> i64 {
        self.queue.enqueue(u, self.clock.now()).await.unwrap()
    }

    /// The firing's rows, first row first.
    async fn firing(&self, id: i64) -> Vec<Update> {
        let mut rows: Vec<Update> = self
            .queue
            .list(&[])
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.id == id || r.parent == Some(id))
            .collect();
        rows.sort_by_key(|r| r.id);
        rows
    }

    fn methods(&self) -> Vec<&'static str> {
        self.slack.received().iter().map(|r| r.method).collect()
    }
}

#[tokio::test]
async fn a_focus_block_sets_the_status_then_dnd_then_presence_each_on_its_own_row() {
    let mut rig = rig().await;
    let until = rig.at(90).timestamp();
    let id = rig
        .enqueue(&focus(
            &rig,
            90,
            Some(Dnd::Snooze { until }),
            Some(Presence::Away),
        ))
        .await;
    rig.drain().await;
    assert_eq!(
        rig.methods(),
        ["users.profile.set", "dnd.setSnooze", "users.setPresence"],
        "in SPEC §6's order"
    );
    // ⌈(expiry − request start) / 60 s⌉: the request starts a moment after the start.
    let snooze = &rig.slack.received_for("dnd.setSnooze")[0];
    assert_eq!(snooze.form, [("num_minutes".to_string(), "90".to_string())]);
    assert_eq!(rig.slack.presence("xoxp-a").as_deref(), Some("away"));
    let rows = rig.firing(id).await;
    let parts: Vec<(Part, State, Option<i64>)> = rows
        .iter()
        .map(|r| (r.patch.part(), r.state, r.parent))
        .collect();
    assert_eq!(
        parts,
        [
            (Part::Profile, State::Sent, None),
            (Part::Dnd, State::Sent, Some(id)),
            (Part::Presence, State::Sent, Some(id)),
        ]
    );
    // Each start is logged with its method, for the windows rebuilt at start.
    let sends = rig.queue.sends_since("a", rig.start).await.unwrap();
    let logged: Vec<&str> = sends.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(
        logged,
        ["users.profile.set", "dnd.setSnooze", "users.setPresence"]
    );
}

#[tokio::test]
async fn a_missing_dnd_scope_fails_that_part_only_and_holds_nothing() {
    let mut rig = rig().await;
    rig.slack.without_scope("xoxp-a", "dnd:write");
    let until = rig.at(60).timestamp();
    let id = rig
        .enqueue(&focus(
            &rig,
            60,
            Some(Dnd::Snooze { until }),
            Some(Presence::Away),
        ))
        .await;
    rig.drain().await;
    let rows = rig.firing(id).await;
    assert_eq!(rows[0].state, State::Sent, "the status went out");
    assert_eq!(rows[1].state, State::Failed);
    let error = rows[1].last_error.clone().unwrap();
    assert!(error.contains("dnd:write"), "{error}");
    assert_eq!(rows[2].state, State::Sent, "presence still went out");
    // The token is not held: the next firing goes out.
    let next = rig
        .enqueue(&NewUpdate {
            fire_at: rig.at(1),
            ..common::status_update("a", None, "Back", ":wave:", rig.at(1))
        })
        .await;
    rig.go_to(1);
    rig.drain().await;
    assert_eq!(
        rig.queue.get(next).await.unwrap().unwrap().state,
        State::Sent
    );

    // Once the scope is granted, `queue retry` of the firing resends only the failed part.
    rig.slack.missing_scopes_clear();
    assert!(rig.queue.retry(id, rig.clock.now()).await.unwrap());
    rig.drain().await;
    let rows = rig.firing(id).await;
    assert!(rows.iter().all(|r| r.state == State::Sent), "{rows:#?}");
    let sets = rig.slack.received_for("users.profile.set").len();
    assert_eq!(
        sets, 2,
        "the focus status once, the next firing once: no resend"
    );
    assert_eq!(rig.slack.received_for("dnd.setSnooze").len(), 2);
}

#[tokio::test]
async fn dnd_and_presence_go_out_even_when_the_status_is_skipped() {
    let mut rig = rig().await;
    rig.slack.set_by_hand(
        "xoxp-a",
        "",
        json!({"status_text": "Mine", "status_emoji": ":wave:", "status_expiration": 0}),
    );
    let until = rig.at(60).timestamp();
    let id = rig
        .enqueue(&NewUpdate {
            respect_manual: true,
            ..focus(&rig, 60, Some(Dnd::Snooze { until }), None)
        })
        .await;
    rig.drain().await;
    let rows = rig.firing(id).await;
    assert_eq!(
        (rows[0].state, rows[1].state),
        (State::Skipped, State::Sent)
    );
    assert!(rig.slack.snooze("xoxp-a").is_some());
}

#[tokio::test]
async fn dnd_parts_merge_newest_first_and_a_passed_snooze_is_expired() {
    let mut rig = rig().await;
    let dnd_only = |rig: &Rig, dnd| NewUpdate {
        patch: Patch {
            dnd: Some(dnd),
            ..Patch::default()
        },
        ..focus(rig, 60, None, None)
    };
    let a = rig
        .enqueue(&dnd_only(
            &rig,
            Dnd::Snooze {
                until: rig.at(60).timestamp(),
            },
        ))
        .await;
    let b = rig.enqueue(&dnd_only(&rig, Dnd::End)).await;
    rig.drain().await;
    assert_eq!(
        rig.methods(),
        ["dnd.endSnooze"],
        "one request: the newest wins"
    );
    assert_eq!(
        rig.queue.get(a).await.unwrap().unwrap().state,
        State::Superseded
    );
    // No snooze was active: snooze_not_active counts as done.
    assert_eq!(rig.queue.get(b).await.unwrap().unwrap().state, State::Sent);

    let late = rig
        .enqueue(&dnd_only(
            &rig,
            Dnd::Snooze {
                until: rig.at(5).timestamp(),
            },
        ))
        .await;
    rig.go_to(6);
    rig.drain().await;
    assert_eq!(
        rig.queue.get(late).await.unwrap().unwrap().state,
        State::Expired
    );
    assert_eq!(rig.slack.received_for("dnd.setSnooze").len(), 0);
}

#[tokio::test]
async fn a_temporary_away_is_set_back_to_auto_at_its_end_and_end_now_stops_the_snooze() {
    let mut rig = rig().await;
    let until = rig.at(60).timestamp();
    let id = rig
        .enqueue(&NewUpdate {
            restore: true,
            ..focus(&rig, 60, None, Some(Presence::Away))
        })
        .await;
    rig.drain().await;
    assert_eq!(rig.slack.presence("xoxp-a").as_deref(), Some("away"));
    let rows = rig.firing(id).await;
    assert_eq!(
        rows.len(),
        3,
        "status, away, and auto at the end: {rows:#?}"
    );
    assert_eq!(rows[2].fire_at.timestamp(), until);
    assert_eq!(rows[2].state, State::Pending);
    rig.go_to(60);
    rig.drain().await;
    assert_eq!(rig.slack.presence("xoxp-a").as_deref(), Some("auto"));

    // A snooze, ended early: `set --end` ends the snooze with the temporary status.
    let later = rig.at(120).timestamp();
    rig.enqueue(&NewUpdate {
        fire_at: rig.at(61),
        restore: true,
        ..focus(&rig, 120, Some(Dnd::Snooze { until: later }), None)
    })
    .await;
    rig.go_to(61);
    rig.drain().await;
    assert!(rig.slack.snooze("xoxp-a").is_some());
    let target = Target {
        token: "a".into(),
        user: None,
    };
    rig.go_to(62);
    rig.queue
        .end_temporary_now(&target, rig.clock.now())
        .await
        .unwrap();
    rig.drain().await;
    assert_eq!(rig.slack.snooze("xoxp-a"), None, "the snooze was ended");
    assert_eq!(rig.methods().last(), Some(&"dnd.endSnooze"));
}
