//! The CLI's reads and edits of the queue on PostgreSQL (`queue list/retry/drop`, `status`),
//! retention, holds of a token Slack refused, and the scheduler's marks.
//!
//! NOT BUILT YET: each method answers `QueueError::NotOnPostgres` until its statements
//! are written (issue 16).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::PgQueue;
use crate::profile::Status;
use crate::queue::{Depth, NewUpdate, QueueError, RuleMark, State, Target, TokenSummary, Update};

impl PgQueue {
    /// As on SQLite (`Queue::release_held`).
    pub async fn release_held(
        &self,
        _token: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        Err(QueueError::NotOnPostgres("release_held"))
    }

    /// As on SQLite (`Queue::fail_removed_tokens`).
    pub async fn fail_removed_tokens(
        &self,
        _known: &[String],
        _now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        Err(QueueError::NotOnPostgres("fail_removed_tokens"))
    }

    /// As on SQLite (`Queue::advance_rule`).
    pub async fn advance_rule(
        &self,
        _rule: &str,
        _until: DateTime<Utc>,
        _firing: Option<&NewUpdate>,
        _now: DateTime<Utc>,
    ) -> Result<Option<i64>, QueueError> {
        Err(QueueError::NotOnPostgres("advance_rule"))
    }

    /// As on SQLite (`Queue::rule_marks`).
    pub async fn rule_marks(&self) -> Result<HashMap<String, RuleMark>, QueueError> {
        Err(QueueError::NotOnPostgres("rule_marks"))
    }

    /// As on SQLite (`Queue::list`).
    pub async fn list(&self, _states: &[State]) -> Result<Vec<Update>, QueueError> {
        Err(QueueError::NotOnPostgres("list"))
    }

    /// As on SQLite (`Queue::get`).
    pub async fn get(&self, _id: i64) -> Result<Option<Update>, QueueError> {
        Err(QueueError::NotOnPostgres("get"))
    }

    /// As on SQLite (`Queue::purge`).
    pub async fn purge(
        &self,
        _before: DateTime<Utc>,
        _sends_before: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        Err(QueueError::NotOnPostgres("purge"))
    }

    /// As on SQLite (`Queue::retry`).
    pub async fn retry(&self, _id: i64, _now: DateTime<Utc>) -> Result<bool, QueueError> {
        Err(QueueError::NotOnPostgres("retry"))
    }

    /// As on SQLite (`Queue::drop_row`).
    pub async fn drop_row(&self, _id: i64) -> Result<bool, QueueError> {
        Err(QueueError::NotOnPostgres("drop_row"))
    }

    /// As on SQLite (`Queue::count`).
    pub async fn count(&self, _state: State) -> Result<i64, QueueError> {
        Err(QueueError::NotOnPostgres("count"))
    }

    /// As on SQLite (`Queue::hold_token`).
    pub async fn hold_token(
        &self,
        _token: &str,
        _error: &str,
        _now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        Err(QueueError::NotOnPostgres("hold_token"))
    }

    /// As on SQLite (`Queue::last_sent_status`).
    pub async fn last_sent_status(&self, _target: &Target) -> Result<Option<Status>, QueueError> {
        Err(QueueError::NotOnPostgres("last_sent_status"))
    }

    /// As on SQLite (`Queue::token_summaries`).
    pub async fn token_summaries(&self) -> Result<Vec<TokenSummary>, QueueError> {
        Err(QueueError::NotOnPostgres("token_summaries"))
    }

    /// As on SQLite (`Queue::tokens_with_pending`).
    pub async fn tokens_with_pending(&self) -> Result<Vec<String>, QueueError> {
        Err(QueueError::NotOnPostgres("tokens_with_pending"))
    }

    /// As on SQLite (`Queue::depth`).
    pub async fn depth(&self, _now: DateTime<Utc>) -> Result<Depth, QueueError> {
        Err(QueueError::NotOnPostgres("depth"))
    }
}
