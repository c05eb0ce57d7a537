//! A calendar's rows and last good copy on PostgreSQL (see `queue/calendar.rs`).
//!
//! NOT BUILT YET: each method answers `QueueError::NotOnPostgres` until its statements
//! are written (issue 16).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::PgQueue;
use crate::queue::{CalendarCopy, CalendarFiring, CalendarRow, QueueError, ShownRow, Target};

impl PgQueue {
    /// As on SQLite (`Queue::calendar_rows`).
    pub async fn calendar_rows(&self, _calendar: &str) -> Result<Vec<CalendarRow>, QueueError> {
        Err(QueueError::NotOnPostgres("calendar_rows"))
    }

    /// As on SQLite (`Queue::calendar_shown`).
    pub async fn calendar_shown(
        &self,
        _calendar: &str,
        _target: &Target,
        _now: DateTime<Utc>,
    ) -> Result<Option<ShownRow>, QueueError> {
        Err(QueueError::NotOnPostgres("calendar_shown"))
    }

    /// As on SQLite (`Queue::apply_calendar`).
    pub async fn apply_calendar(
        &self,
        _calendar: &str,
        _supersede: Vec<i64>,
        _enqueue: Vec<CalendarFiring>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<i64>, QueueError> {
        Err(QueueError::NotOnPostgres("apply_calendar"))
    }

    /// As on SQLite (`Queue::calendar_copy`).
    pub async fn calendar_copy(&self, _calendar: &str) -> Result<Option<CalendarCopy>, QueueError> {
        Err(QueueError::NotOnPostgres("calendar_copy"))
    }

    /// As on SQLite (`Queue::store_calendar_copy`).
    pub async fn store_calendar_copy(
        &self,
        _calendar: &str,
        _copy: &CalendarCopy,
    ) -> Result<(), QueueError> {
        Err(QueueError::NotOnPostgres("store_calendar_copy"))
    }

    /// As on SQLite (`Queue::supersede_removed_calendars`).
    pub async fn supersede_removed_calendars(
        &self,
        _keep: &[String],
        _now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        Err(QueueError::NotOnPostgres("supersede_removed_calendars"))
    }

    /// As on SQLite (`Queue::touch_calendar_copy`).
    pub async fn touch_calendar_copy(
        &self,
        _calendar: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        Err(QueueError::NotOnPostgres("touch_calendar_copy"))
    }

    /// As on SQLite (`Queue::calendar_fetches`).
    pub async fn calendar_fetches(&self) -> Result<HashMap<String, DateTime<Utc>>, QueueError> {
        Err(QueueError::NotOnPostgres("calendar_fetches"))
    }

    /// As on SQLite (`Queue::drop_calendar_copies_except`).
    pub async fn drop_calendar_copies_except(&self, _keep: &[String]) -> Result<u64, QueueError> {
        Err(QueueError::NotOnPostgres("drop_calendar_copies_except"))
    }
}
