//! The `status_text`/`status_emoji` templates of `[[calendars.map]]` entries (SPEC §5):
//! `{summary}`, `{start:FMT}` and `{end:FMT}` with a strftime `FMT`, and `{{`/`}}` for
//! literal braces.
//!
//! A template is parsed once, when the config is loaded, into [`Part`]s whose formats chrono
//! has already checked, so `check` rejects an unknown `{name}` or a bad format with its
//! position, and rendering cannot fail. [`Template::render`] is pure: the event's summary,
//! start, end, all-day flag and the calendar's zone in, the text out.

use std::fmt::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Days, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::profile::MAX_STATUS_TEXT;
use crate::schedule::local_to_instant;

/// What a rendered text over [`MAX_STATUS_TEXT`] characters ends in, after it is cut.
pub const CUT_MARK: char = '…';

/// A parsed template; the default is the empty one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    /// The pieces in order; adjacent literal text is kept as one piece.
    parts: Vec<Part>,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// Literal text, with `{{`/`}}` already turned into single braces.
    Text(String),
    /// `{summary}`.
    Summary,
    /// `{start:FMT}`: the event's start in the calendar's zone.
    Start(Format),
    /// `{end:FMT}`: the event's end, or for an all-day event its last day.
    End(Format),
}

/// A strftime format that chrono accepted.
#[derive(Debug, Clone, PartialEq)]
struct Format(Vec<Item<'static>>);

/// Why a template cannot be used, and where: `offset` is the byte offset in the template
/// text of the brace or format at fault, so the config can point at its column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// Byte offset in the template text.
    pub offset: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// What a template is rendered from: one occurrence of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill<'a> {
    /// The event's title as shown (`Busy` for a private event: the caller decides).
    pub summary: &'a str,
    /// The occurrence's start (for an all-day event: local midnight of its first day).
    pub start: DateTime<Utc>,
    /// The occurrence's end, exclusive (for an all-day event: local midnight after its last
    /// day, as iCalendar's DTEND says).
    pub end: DateTime<Utc>,
    /// Whether it is an all-day (DATE) event.
    pub all_day: bool,
}

/// The names a placeholder may have, for messages.
const NAMES: &str = "{summary}, {start:FMT} or {end:FMT}";

impl Template {
    /// Parse `text`. Every problem is returned, earliest first.
    pub fn parse(text: &str) -> Result<Template, Vec<TemplateError>> {
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => errors.push(TemplateError {
                    offset: at,
                    message: "a lone } ends no placeholder; write }} for a literal }".into(),
                }),
                '{' => {
                    let body_start = at + 1;
                    let Some(len) = text[body_start..].find('}') else {
                        errors.push(TemplateError {
                            offset: at,
                            message: format!(
                                "this {{ is never closed; finish the placeholder with }} \
                                 ({NAMES}), or write {{{{ for a literal {{"
                            ),
                        });
                        break;
                    };
                    let body = &text[body_start..body_start + len];
                    // Skip the placeholder's characters and its closing brace.
                    while chars.next_if(|&(i, _)| i <= body_start + len).is_some() {}
                    match placeholder(body, body_start) {
                        Ok(part) => {
                            if !literal.is_empty() {
                                parts.push(Part::Text(std::mem::take(&mut literal)));
                            }
                            parts.push(part);
                        }
                        Err(e) => errors.push(e),
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if errors.is_empty() {
            Ok(Template { parts })
        } else {
            Err(errors)
        }
    }

    /// The text for `fill`, with times in `zone`, cut to Slack's limit by [`cut`].
    ///
    /// The summary is outside text (a feed's title): its line breaks and other control
    /// characters become spaces, since a status is one line.
    pub fn render(&self, fill: &Fill<'_>, zone: Tz) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Summary => {
                    out.extend(
                        fill.summary
                            .chars()
                            .map(|c| if c.is_control() { ' ' } else { c }),
                    )
                }
                Part::Start(f) => f.write(&mut out, fill.start.with_timezone(&zone)),
                Part::End(f) => f.write(&mut out, shown_end(fill, zone)),
            }
        }
        cut(out)
    }
}

/// The instant `{end}` shows: the end itself, or for an all-day event local midnight of its
/// last day (DTEND is exclusive: an event on Fri 11 Dec ends at midnight starting Sat 12),
/// never before its first day.
fn shown_end(fill: &Fill<'_>, zone: Tz) -> DateTime<Tz> {
    if !fill.all_day {
        return fill.end.with_timezone(&zone);
    }
    let first = fill.start.with_timezone(&zone).date_naive();
    let last = fill
        .end
        .with_timezone(&zone)
        .date_naive()
        .checked_sub_days(Days::new(1))
        .unwrap_or(first)
        .max(first);
    local_to_instant(zone, last.and_time(NaiveTime::MIN)).with_timezone(&zone)
}

impl Format {
    /// Append `at` in this format.
    fn write(&self, out: &mut String, at: DateTime<Tz>) {
        // Every item was accepted by chrono's parser and a zoned time has every field a
        // format can ask for, so this does not fail; if it did, the placeholder is left out
        // rather than the daemon stopping.
        let _ = write!(out, "{}", at.format_with_items(self.0.iter()));
    }
}

/// The part for a placeholder's `body` (the text between its braces), which starts at byte
/// `start` of the template. A bad name is reported at the opening brace, a bad format where
/// the format starts.
fn placeholder(body: &str, start: usize) -> Result<Part, TemplateError> {
    let (name, format) = match body.split_once(':') {
        Some((name, format)) => (name, Some(format)),
        None => (body, None),
    };
    let fail = |message: String| TemplateError {
        offset: start - 1,
        message,
    };
    let name = name.trim();
    match (name, format) {
        ("summary", None) => Ok(Part::Summary),
        ("summary", Some(_)) => Err(fail(
            "{summary} takes no format; write {summary} (formats are for {start:FMT} and \
             {end:FMT})"
                .into(),
        )),
        ("start" | "end", None) => Err(fail(format!(
            "{{{name}}} needs a strftime format; write e.g. {{{name}:%H:%M}} or \
             {{{name}:%a %-d %b}}"
        ))),
        ("start" | "end", Some(f)) => {
            let f = strftime(f).map_err(|message| TemplateError {
                offset: start + name.len() + 1,
                message: format!("{{{name}:…}}: {message}"),
            })?;
            Ok(if name == "start" {
                Part::Start(f)
            } else {
                Part::End(f)
            })
        }
        _ => Err(fail(format!(
            "unknown placeholder {{{name}}}; use {NAMES}, or write {{{{ and }}}} for literal \
             braces"
        ))),
    }
}

/// A strftime format, checked by chrono.
fn strftime(format: &str) -> Result<Format, String> {
    if format.is_empty() {
        return Err("the format is empty; give one such as %H:%M".into());
    }
    StrftimeItems::new(format)
        .parse_to_owned()
        .map(Format)
        .map_err(|_| {
            format!(
                "{format:?} is not a valid strftime format (a % must be followed by a known \
                 specifier such as %H, %M, %a, %-d, %b; %% is a literal %)"
            )
        })
}

/// `text`, or if it is over Slack's [`MAX_STATUS_TEXT`] characters (Unicode scalar values),
/// its first 99 characters and [`CUT_MARK`].
pub fn cut(text: String) -> String {
    if text.chars().count() <= MAX_STATUS_TEXT {
        return text;
    }
    let mut out: String = text.chars().take(MAX_STATUS_TEXT - 1).collect();
    out.push(CUT_MARK);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        BERLIN
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn render(template: &str, fill: &Fill<'_>) -> String {
        Template::parse(template).unwrap().render(fill, BERLIN)
    }

    /// A timed meeting Mon 23 Nov 2026 09:30–10:15 Berlin, and an all-day event on
    /// Wed 9 Dec to Fri 11 Dec (DTEND Sat 12 Dec).
    fn meeting() -> Fill<'static> {
        Fill {
            summary: "Standup",
            start: at(2026, 11, 23, 9, 30),
            end: at(2026, 11, 23, 10, 15),
            all_day: false,
        }
    }

    fn vacation() -> Fill<'static> {
        Fill {
            summary: "Vacation",
            start: at(2026, 12, 9, 0, 0),
            end: at(2026, 12, 12, 0, 0),
            all_day: true,
        }
    }

    #[test]
    fn templates_render_summary_start_and_end_in_the_zone() {
        let cases: &[(&str, Fill<'_>, &str)] = &[
            ("{summary}", meeting(), "Standup"),
            (
                "In {summary} until {end:%H:%M}",
                meeting(),
                "In Standup until 10:15",
            ),
            ("{start:%H:%M}–{end:%H:%M}", meeting(), "09:30–10:15"),
            ("{start:%a %-d %b}", meeting(), "Mon 23 Nov"),
            ("{{literal}} {summary}", meeting(), "{literal} Standup"),
            ("100%", meeting(), "100%"),
            ("{end:%z %Z}", meeting(), "+0100 CET"),
            ("", meeting(), ""),
            // All day: {end} is the last day, not DTEND's exclusive midnight.
            (
                "Out of office until {end:%a %-d %b}",
                vacation(),
                "Out of office until Fri 11 Dec",
            ),
            ("{start:%F %H:%M}", vacation(), "2026-12-09 00:00"),
            // A one-day event ends on the day it starts.
            (
                "back {end:%F}",
                Fill {
                    end: at(2026, 12, 10, 0, 0),
                    ..vacation()
                },
                "back 2026-12-09",
            ),
            // A zero-length all-day event (a broken feed) still ends on its first day.
            (
                "{end:%F}",
                Fill {
                    end: at(2026, 12, 9, 0, 0),
                    ..vacation()
                },
                "2026-12-09",
            ),
            // Line breaks and controls in a feed's title become spaces.
            (
                "{summary}",
                Fill {
                    summary: "a\nb\u{1b}[31m",
                    ..meeting()
                },
                "a b [31m",
            ),
        ];
        for (template, fill, want) in cases {
            assert_eq!(render(template, fill), *want, "{template}");
        }
    }

    #[test]
    fn an_all_day_event_across_a_dst_change_ends_on_its_last_local_day() {
        // Sat 28 Mar 2026 to Sun 29 Mar (Berlin springs forward on the 29th at 02:00).
        let fill = Fill {
            summary: "Trip",
            start: at(2026, 3, 28, 0, 0),
            end: at(2026, 3, 30, 0, 0),
            all_day: true,
        };
        assert_eq!(render("{end:%a %-d %b %H:%M}", &fill), "Sun 29 Mar 00:00");
        // A zone where midnight itself falls in the gap: America/Santiago skipped from
        // 00:00 to 01:00 on Sun 6 Sep 2026; the last day's start is the first instant after.
        let santiago = chrono_tz::America::Santiago;
        let midnight = |d| {
            local_to_instant(
                santiago,
                chrono::NaiveDate::from_ymd_opt(2026, 9, d)
                    .unwrap()
                    .and_time(NaiveTime::MIN),
            )
        };
        let fill = Fill {
            summary: "x",
            start: midnight(5),
            end: midnight(7),
            all_day: true,
        };
        let t = Template::parse("{end:%F %H:%M}").unwrap();
        assert_eq!(t.render(&fill, santiago), "2026-09-06 01:00");
    }

    #[test]
    fn rendered_text_over_100_characters_is_cut_to_99_and_an_ellipsis() {
        let long = "é".repeat(150);
        let fill = Fill {
            summary: &long,
            ..meeting()
        };
        let out = render("{summary}", &fill);
        assert_eq!(out.chars().count(), 100);
        assert!(out.ends_with("é…"), "{out}");
        let exactly = "x".repeat(100);
        assert_eq!(cut(exactly.clone()), exactly);
        let over = "x".repeat(101);
        assert_eq!(cut(over), format!("{}…", "x".repeat(99)));
        assert_eq!(cut(String::new()), "");
    }

    #[test]
    fn bad_templates_say_where_and_what_to_write() {
        let cases: &[(&str, usize, &str)] = &[
            ("{title}", 0, "unknown placeholder {title}"),
            (
                "In {summary} {location}",
                13,
                "unknown placeholder {location}",
            ),
            ("{start}", 0, "{start} needs a strftime format"),
            ("{end}", 0, "{end} needs a strftime format"),
            ("{start:}", 7, "the format is empty"),
            ("{end:%Q}", 5, "\"%Q\" is not a valid strftime format"),
            ("{end:%H:%}", 5, "not a valid strftime format"),
            ("{summary:%H}", 0, "{summary} takes no format"),
            ("until {end:%H:%M", 6, "this { is never closed"),
            ("a } b", 2, "write }} for a literal }"),
            ("é}", 2, "a lone }"),
        ];
        for (template, offset, phrase) in cases {
            let errs = Template::parse(template).expect_err(template);
            assert_eq!(errs[0].offset, *offset, "{template}: {errs:?}");
            assert!(errs[0].message.contains(phrase), "{template}: {errs:?}");
        }
        // Every problem, not only the first.
        let errs = Template::parse("{a} {b:%H} }").unwrap_err();
        let offsets: Vec<usize> = errs.iter().map(|e| e.offset).collect();
        assert_eq!(offsets, [0, 4, 11]);
    }

    proptest::proptest! {
        /// Any text parses or says where it is wrong (a place inside it), and what parses
        /// renders without a panic, within Slack's limit.
        #[test]
        fn any_text_parses_or_is_located_and_renders_bounded(text in "[{}%:a-z HMQ-é]{0,40}") {
            match Template::parse(&text) {
                Ok(t) => {
                    let out = t.render(&meeting(), BERLIN);
                    proptest::prop_assert!(out.chars().count() <= MAX_STATUS_TEXT);
                    let out = t.render(&vacation(), chrono_tz::Pacific::Apia);
                    proptest::prop_assert!(out.chars().count() <= MAX_STATUS_TEXT);
                }
                Err(errors) => {
                    proptest::prop_assert!(!errors.is_empty());
                    for e in errors {
                        proptest::prop_assert!(text.is_char_boundary(e.offset) && e.offset < text.len());
                    }
                }
            }
        }
    }
}
