//! The wall clock, injected so that time-dependent logic can be tested deterministically.
//!
//! Firings follow the wall clock, but tokio's timers run on the monotonic clock, which stands
//! still while a machine sleeps. So tasks never sleep longer than [`MAX_NAP`] at a time and
//! re-read the wall clock when they wake: after a suspend, a resume or a clock change, what
//! became due is noticed within one nap.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// The longest a task sleeps before re-reading the wall clock.
pub const MAX_NAP: Duration = Duration::from_secs(30);

/// A source of wall-clock time. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Clock {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    System,
    /// Wall time = `base` + time elapsed on tokio's clock + `jump`: under a paused tokio runtime
    /// it advances exactly with `tokio::time::advance`, and `jump` simulates a suspend or a
    /// clock change that tokio's timers do not see.
    Test {
        base: DateTime<Utc>,
        start: tokio::time::Instant,
        jump_ms: Arc<AtomicI64>,
    },
}

impl Clock {
    /// The real system clock.
    pub fn system() -> Clock {
        Clock { kind: Kind::System }
    }

    /// A clock that starts at `base` and follows tokio's (possibly paused) clock.
    pub fn test(base: DateTime<Utc>) -> Clock {
        Clock {
            kind: Kind::Test {
                base,
                start: tokio::time::Instant::now(),
                jump_ms: Arc::new(AtomicI64::new(0)),
            },
        }
    }

    /// Move a test clock's wall time by `by` without tokio's timers noticing, as a suspend or
    /// `date -s` would. No effect on the system clock.
    pub fn jump(&self, by: TimeDelta) {
        if let Kind::Test { jump_ms, .. } = &self.kind {
            jump_ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
        }
    }

    /// The current wall-clock time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.kind {
            Kind::System => Utc::now(),
            Kind::Test {
                base,
                start,
                jump_ms,
            } => {
                let elapsed = TimeDelta::from_std(start.elapsed()).unwrap_or(TimeDelta::MAX);
                *base + elapsed + TimeDelta::milliseconds(jump_ms.load(Ordering::SeqCst))
            }
        }
    }

    /// How long to sleep on the monotonic clock to wake at wall time `at`, capped at
    /// [`MAX_NAP`].
    pub fn nap_until(&self, at: DateTime<Utc>) -> Duration {
        (at - self.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_NAP)
    }
}
