//! A token value that cannot be printed by accident.

use std::fmt;

/// A Slack token. `Debug` and `Display` print `<redacted>`; only [`Secret::expose`] gives
/// the value, and only the Slack client calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a token value.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
