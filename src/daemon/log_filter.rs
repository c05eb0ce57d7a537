//! The log filter as the daemon sees it: something it can hand a new `log_level` on reload.
//!
//! The binary owns the tracing subscriber (it is process-wide, and tests run many daemons in
//! one process without one); it builds the filter behind tracing-subscriber's `reload` layer
//! and gives the daemon a [`LogFilter`] that swaps it. The daemon only says *when*: after a
//! reload whose `log_level` differs from the one in force.

use std::fmt;
use std::sync::Arc;

/// What happened to a `log_level` handed to [`LogFilter::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The new filter is in force.
    Now,
    /// `RUST_LOG` was set when the daemon started and overrides the config's `log_level`, so
    /// the filter stays as `RUST_LOG` says.
    Overridden,
    /// The level is not a valid filter; the old one stays. Holds what is wrong with it.
    Invalid(String),
}

/// Parses a level and swaps the live filter, or says why the level is not a filter.
type Setter = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// Sets the process's log filter from a config's `log_level`.
#[derive(Clone)]
pub struct LogFilter {
    /// Swaps the filter; `None` when `RUST_LOG` overrides the config.
    set: Option<Arc<Setter>>,
}

impl LogFilter {
    /// A filter that `set` replaces: it parses the level and swaps the live filter, or says
    /// why the level is not a filter.
    pub fn new(set: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> Self {
        LogFilter {
            set: Some(Arc::new(set)),
        }
    }

    /// A filter fixed by `RUST_LOG`: a changed `log_level` is reported as overridden.
    pub fn overridden() -> Self {
        LogFilter { set: None }
    }

    /// Put `level` in force, if the process allows it.
    pub fn apply(&self, level: &str) -> Applied {
        match &self.set {
            None => Applied::Overridden,
            Some(set) => match set(level) {
                Ok(()) => Applied::Now,
                Err(e) => Applied::Invalid(e),
            },
        }
    }
}

impl fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.set.is_some() {
            "reloadable"
        } else {
            "fixed"
        };
        write!(f, "LogFilter({state})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn apply_reports_what_happened_to_the_level() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let filter = LogFilter::new(move |level| {
            log.lock().unwrap().push(level.to_string());
            if level == "warn" {
                Ok(())
            } else {
                Err(format!("{level:?} is not a filter"))
            }
        });
        let cases = [
            (filter.clone(), "warn", Applied::Now),
            (
                filter.clone(),
                "loud",
                Applied::Invalid("\"loud\" is not a filter".into()),
            ),
            (LogFilter::overridden(), "warn", Applied::Overridden),
        ];
        for (filter, level, want) in cases {
            assert_eq!(filter.apply(level), want, "{level} with {filter:?}");
        }
        assert_eq!(
            *seen.lock().unwrap(),
            ["warn", "loud"],
            "an overridden filter never calls the setter"
        );
    }
}
