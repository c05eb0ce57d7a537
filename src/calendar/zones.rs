//! TZID → IANA zone, as SPEC §5 "What real feeds get wrong" decides: an IANA name (after a
//! vendor prefix is stripped), a Windows zone name as Outlook writes it, or — left to the
//! parser, which has the file — a VTIMEZONE of that name.

use chrono_tz::Tz;

/// Vendor prefixes that some producers put before an IANA name (Evolution and old
/// Thunderbird write `/softwarestudio.org/Tzfile/Europe/Berlin`, others
/// `/mozilla.org/20070129_1/Europe/Berlin`). Matching is by the last path segments, so only
/// the known shapes need listing.
const VENDOR_PREFIXES: &[&str] = &[
    "/softwarestudio.org/Tzfile/",
    "/softwarestudio.org/Olson_20011030_5/",
    "/citadel.org/",
];

/// Windows zone names (as Outlook and Exchange write them in `TZID`) and their IANA zone,
/// from CLDR's windowsZones.xml ("001" territory). The common ones: every zone with a large
/// working population, and every name Outlook's own UI offers in Europe and the Americas.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("UTC-11", "Etc/GMT+11"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Pacific Standard Time (Mexico)", "America/Tijuana"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time", "America/Denver"),
    ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
    ("Central America Standard Time", "America/Guatemala"),
    ("Central Standard Time", "America/Chicago"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Eastern Standard Time", "America/New_York"),
    ("Eastern Standard Time (Mexico)", "America/Cancun"),
    ("US Eastern Standard Time", "America/Indianapolis"),
    ("Venezuela Standard Time", "America/Caracas"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("SA Western Standard Time", "America/La_Paz"),
    ("Central Brazilian Standard Time", "America/Cuiaba"),
    ("Pacific SA Standard Time", "America/Santiago"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Argentina Standard Time", "America/Buenos_Aires"),
    ("SA Eastern Standard Time", "America/Cayenne"),
    ("Greenland Standard Time", "America/Godthab"),
    ("UTC-02", "Etc/GMT+2"),
    ("Azores Standard Time", "Atlantic/Azores"),
    ("Cape Verde Standard Time", "Atlantic/Cape_Verde"),
    ("UTC", "Etc/UTC"),
    ("Coordinated Universal Time", "Etc/UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("Morocco Standard Time", "Africa/Casablanca"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Arabic Standard Time", "Asia/Baghdad"),
    ("E. Africa Standard Time", "Africa/Nairobi"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Afghanistan Standard Time", "Asia/Kabul"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("West Asia Standard Time", "Asia/Tashkent"),
    ("India Standard Time", "Asia/Calcutta"),
    ("Sri Lanka Standard Time", "Asia/Colombo"),
    ("Nepal Standard Time", "Asia/Katmandu"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("Myanmar Standard Time", "Asia/Rangoon"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Central Standard Time", "Australia/Darwin"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("Tasmania Standard Time", "Australia/Hobart"),
    ("West Pacific Standard Time", "Pacific/Port_Moresby"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("Fiji Standard Time", "Pacific/Fiji"),
    ("Tonga Standard Time", "Pacific/Tongatapu"),
    ("Samoa Standard Time", "Pacific/Apia"),
];

/// The IANA zone a TZID names directly: an IANA name, the same after a vendor prefix, or a
/// known Windows name. `None` when the TZID needs the file's VTIMEZONE (or is unknown).
pub fn known_zone(tzid: &str) -> Option<Tz> {
    // Outlook sometimes quotes the parameter and some producers pad it.
    let tzid = tzid.trim().trim_matches('"');
    if let Ok(tz) = tzid.parse::<Tz>() {
        return Some(tz);
    }
    for prefix in VENDOR_PREFIXES {
        if let Some(rest) = tzid.strip_prefix(prefix) {
            if let Ok(tz) = rest.parse::<Tz>() {
                return Some(tz);
            }
        }
    }
    // Unknown vendors: `/vendor/version/Area/City` — try the last two and three segments.
    if tzid.starts_with('/') {
        let parts: Vec<&str> = tzid.split('/').collect();
        for take in [2, 3] {
            if parts.len() > take {
                let tail = parts[parts.len() - take..].join("/");
                if let Ok(tz) = tail.parse::<Tz>() {
                    return Some(tz);
                }
            }
        }
    }
    windows_zone(tzid)
}

/// The IANA zone of a Windows zone name, or `None` when it is not in the table.
pub fn windows_zone(name: &str) -> Option<Tz> {
    WINDOWS_ZONES
        .iter()
        .find(|(windows, _)| windows.eq_ignore_ascii_case(name))
        .and_then(|(_, iana)| iana.parse().ok())
}

/// The zones tried first when a VTIMEZONE is matched by its offsets: the Windows table's
/// zones, so that a match picks the zone people name (Europe/Berlin) over an alphabetically
/// earlier twin with the same rules (Africa/Ceuta).
pub fn preferred_zones() -> impl Iterator<Item = Tz> {
    WINDOWS_ZONES
        .iter()
        .filter_map(|(_, iana)| iana.parse().ok())
        .chain(chrono_tz::TZ_VARIANTS.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tzid_table() {
        let cases: &[(&str, Option<Tz>)] = &[
            ("Europe/Berlin", Some(Tz::Europe__Berlin)),
            (
                "/softwarestudio.org/Tzfile/Europe/Berlin",
                Some(Tz::Europe__Berlin),
            ),
            (
                "/mozilla.org/20070129_1/America/New_York",
                Some(Tz::America__New_York),
            ),
            ("W. Europe Standard Time", Some(Tz::Europe__Berlin)),
            ("\"Eastern Standard Time\"", Some(Tz::America__New_York)),
            ("eastern standard time", Some(Tz::America__New_York)),
            ("Romance Standard Time", Some(Tz::Europe__Paris)),
            ("Customized Time Zone", None),
            ("", None),
            ("/", None),
        ];
        for (tzid, want) in cases {
            assert_eq!(known_zone(tzid), *want, "{tzid:?}");
        }
    }

    #[test]
    fn every_windows_entry_names_a_real_zone() {
        for (windows, iana) in WINDOWS_ZONES {
            assert!(iana.parse::<Tz>().is_ok(), "{windows} → {iana}");
        }
    }
}
