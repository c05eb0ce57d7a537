//! The timeline (SPEC §5 "Timeline"): occurrences + the calendar's map → the status shown
//! between boundaries. Pure.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Utc};

use super::expand::Occurrence;

/// The calendar's ordered map: which entry, if any, an occurrence matches. The config's
/// `[[calendars.map]]` entries implement this; the first entry that matches wins, so a lower
/// index is a higher priority.
pub trait Matcher {
    /// The index of the first map entry that matches `occurrence`, or `None`.
    fn matches(&self, occurrence: &Occurrence) -> Option<usize>;
}

/// What is shown during one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// The index of the occurrence in the slice given to [`timeline`].
    pub occurrence: usize,
    /// The index of the map entry it matched.
    pub entry: usize,
}

/// A boundary where what is shown changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// When the change happens.
    pub at: DateTime<Utc>,
    /// What is shown from then on, or `None` for nothing.
    pub shown: Option<Shown>,
}

/// The changes of the status shown, in time order. `occurrences` must be sorted by start,
/// then feed order (as [`super::expand`] returns them): at an equal start the earlier one in
/// the slice wins. Ignored occurrences and zero-length ones are never shown.
///
/// At each instant, among the occurrences active then (start ≤ t < end), the one whose entry
/// comes first wins; among equals, the one that started last; at an equal start, the one
/// first in the feed. A boundary where the same occurrence stays shown with the same entry
/// is no change. Whether two *different* occurrences render the same text is for the caller
/// to decide, once the entries' templates are applied.
pub fn timeline(occurrences: &[Occurrence], matcher: &impl Matcher) -> Vec<Change> {
    let candidates: Vec<(usize, usize)> = occurrences
        .iter()
        .enumerate()
        .filter(|(_, o)| o.ignored.is_none() && o.end > o.start)
        .filter_map(|(i, o)| matcher.matches(o).map(|entry| (i, entry)))
        .collect();

    let mut boundaries: Vec<DateTime<Utc>> = candidates
        .iter()
        .flat_map(|&(i, _)| [occurrences[i].start, occurrences[i].end])
        .collect();
    boundaries.sort_unstable();
    boundaries.dedup();

    // A sweep: `next` walks the candidates in start order; `active` is a heap of those begun,
    // best first (lowest entry, then latest start, then first in the feed). An ended one is
    // dropped only when it reaches the top: below the top it cannot change what is shown.
    // So a feed of thousands of overlapping occurrences (a FREQ=SECONDLY rule) costs
    // n log n, not n².
    let mut by_start = candidates;
    by_start.sort_by_key(|&(i, _)| (occurrences[i].start, i));
    let mut next = 0;
    // (entry, latest start first, feed order), reversed so the heap's top is the best.
    type Rank = Reverse<(usize, Reverse<DateTime<Utc>>, usize)>;
    let mut active: BinaryHeap<Rank> = BinaryHeap::new();
    let mut shown: Option<Shown> = None;
    let mut changes = Vec::new();
    for at in boundaries {
        while next < by_start.len() && occurrences[by_start[next].0].start <= at {
            let (i, entry) = by_start[next];
            active.push(Reverse((entry, Reverse(occurrences[i].start), i)));
            next += 1;
        }
        while active
            .peek()
            .is_some_and(|Reverse((_, _, i))| occurrences[*i].end <= at)
        {
            active.pop();
        }
        let best = active
            .peek()
            .map(|&Reverse((entry, _, occurrence))| Shown { occurrence, entry });
        if best != shown {
            changes.push(Change { at, shown: best });
            shown = best;
        }
    }
    changes
}
