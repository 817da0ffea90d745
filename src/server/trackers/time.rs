//! Instants as trackers write them: Unix seconds or milliseconds, ISO 8601 (with `Z`, an
//! offset with or without its colon as Overland writes it, or fractional seconds), and
//! Traccar's `yyyy-MM-dd HH:mm:ss` (UTC), all to Unix milliseconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Numbers at or above this are milliseconds, below it seconds: 10^11 seconds is the year
/// 5138, and 10^11 milliseconds is March 1973, before any tracker.
const MILLIS_FROM: i64 = 100_000_000_000;

/// Unix seconds or milliseconds, told apart by size, to milliseconds.
pub fn from_epoch_number(n: i64) -> Option<i64> {
    if n.unsigned_abs() >= MILLIS_FROM as u64 {
        Some(n)
    } else {
        n.checked_mul(1000)
    }
}

/// An ISO 8601 instant with a zone (`Z` or an offset, with or without its colon), or
/// `yyyy-MM-dd HH:mm:ss` taken as UTC, to Unix milliseconds.
pub fn from_iso(text: &str) -> Option<i64> {
    let text = text.trim();
    // The usual case, already RFC 3339 (`Z` or `+hh:mm`): parsed where it lies.
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok();
    }
    let (date, clock) = text.split_once(['T', 't', ' '])?;
    // A `+` offset sent unescaped in a query string arrives as a space (`…14:30:00 02:00`).
    let clock = match clock.split_once(' ') {
        Some((time_of_day, offset))
            if offset.bytes().next().is_some_and(|b| b.is_ascii_digit()) =>
        {
            std::borrow::Cow::Owned(format!("{time_of_day}+{offset}"))
        }
        _ => std::borrow::Cow::Borrowed(clock),
    };
    let clock = clock.as_ref();
    let zone_at = clock.find(['Z', 'z', '+', '-']);
    let normalized = match zone_at {
        // No zone (Traccar's form): UTC.
        None => format!("{date}T{clock}Z"),
        Some(at) => {
            let (time_of_day, zone) = clock.split_at(at);
            let digits = &zone[1..];
            if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
                // `+hhmm` (Overland's form): RFC 3339 wants `+hh:mm`.
                format!(
                    "{date}T{time_of_day}{}{}:{}",
                    &zone[..1],
                    &digits[..2],
                    &digits[2..]
                )
            } else {
                format!("{date}T{clock}")
            }
        }
    };
    let at = OffsetDateTime::parse(&normalized, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A timestamp as OsmAnd and Traccar Client send it: seconds, milliseconds or ISO 8601.
pub fn from_any(text: &str) -> Option<i64> {
    match text.trim().parse::<i64>() {
        Ok(n) => from_epoch_number(n),
        Err(_) => match text.trim().parse::<f64>() {
            // Seconds with a fraction.
            Ok(x) if x.is_finite() && x.abs() < MILLIS_FROM as f64 => {
                Some((x * 1000.0).round() as i64)
            }
            _ => from_iso(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_trackers_send_reads_as_the_same_instant() {
        let ms = 1_443_711_600_000; // 2015-10-01T15:00:00Z
        assert_eq!(
            from_iso("2015-10-01T08:00:00-0700"),
            Some(ms),
            "Overland's offset"
        );
        assert_eq!(from_iso("2015-10-01T08:00:00-07:00"), Some(ms));
        assert_eq!(from_iso("2015-10-01T15:00:00Z"), Some(ms));
        assert_eq!(
            from_iso("2015-10-01T15:00:00.000Z"),
            Some(ms),
            "Traccar Client's"
        );
        assert_eq!(from_iso("2015-10-01T17:00:00+0200"), Some(ms));
        assert_eq!(from_iso("2015-10-01 15:00:00"), Some(ms), "Traccar's, UTC");
        assert_eq!(from_iso("2015-10-01T15:00:00.250Z"), Some(ms + 250));
        assert_eq!(
            from_iso("2015-10-01T17:00:00 02:00"),
            Some(ms),
            "a `+` sent unescaped in a query"
        );
        assert_eq!(from_any("1443711600"), Some(ms), "seconds");
        assert_eq!(from_any("1443711600000"), Some(ms), "milliseconds");
        assert_eq!(from_any("1443711600.5"), Some(ms + 500));
        assert_eq!(from_any("2015-10-01T08:00:00-0700"), Some(ms));
        for bad in [
            "",
            "yesterday",
            "2015-13-01T00:00:00Z",
            "2015-10-01T08:00:00+07",
            "12:00",
        ] {
            assert_eq!(from_any(bad), None, "{bad:?}");
        }
    }
}
