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
    if let Some(ms) = common_iso(text.as_bytes()) {
        return Some(ms);
    }
    general_iso(text)
}

/// The shape nearly every tracker writes, read by hand: `YYYY-MM-DDTHH:MM:SS`, an optional
/// fraction, and `Z`, `±HH:MM` or `±HHMM`, from 1970 on (`None` for anything else, which
/// [`general_iso`] then reads). Written by hand because it is the hot path of every
/// Overland point and half of Takeout's records, where NDJSON reports carry integer times:
/// this is a few dozen comparisons, and with it Overland batches of 100 went from 0.723 to
/// 0.786 of `POST /v1/positions` batches (`scripts/trackers-bench.sh`, medians of 3). The
/// proptest below holds it to [`general_iso`] on every instant it reads.
fn common_iso(b: &[u8]) -> Option<i64> {
    fn digits(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if year < 1970 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some((&b'.', fraction)) = rest.split_first() {
        let count = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        for (i, &c) in fraction[..count.min(3)].iter().enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][i];
        }
        rest = &fraction[count..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
    // `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    // Before 1970 (a date in 1970 with an offset east of UTC), `time` rounds a fraction
    // toward zero where this would floor: leave those to it.
    (seconds >= 0).then(|| seconds * 1000 + millis)
}

/// Every other ISO 8601 form the trackers send, through `time`'s RFC 3339 parser (after
/// mending the offset and the separator).
fn general_iso(text: &str) -> Option<i64> {
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
    use proptest::prelude::*;

    proptest! {
        /// The hand-written reader reads every instant of its shape as `time` does, and
        /// leaves alone what it does not read.
        #[test]
        fn the_common_shape_reads_as_the_general_reader_does(
            year in 1960i64..2200,
            month in 0u8..14,
            day in 0u8..33,
            hour in 0u8..25,
            minute in 0u8..61,
            second in 0u8..61,
            fraction in prop::option::of("[0-9]{1,9}"),
            zone in prop_oneof![
                Just("Z".to_string()),
                (any::<bool>(), 0u8..25, 0u8..61, any::<bool>()).prop_map(|(east, h, m, colon)| {
                    format!("{}{h:02}{}{m:02}", if east { '+' } else { '-' }, if colon { ":" } else { "" })
                }),
            ],
        ) {
            let text = format!(
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{}{zone}",
                fraction.map(|f| format!(".{f}")).unwrap_or_default()
            );
            if let Some(fast) = common_iso(text.as_bytes()) {
                prop_assert_eq!(Some(fast), general_iso(&text), "{}", text);
            }
            prop_assert_eq!(from_iso(&text), general_iso(&text), "{}", text);
        }
    }

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
        for common in [
            "2015-10-01T08:00:00-0700",
            "2015-10-01T15:00:00.250Z",
            "2015-10-01T17:00:00+02:00",
        ] {
            assert!(
                common_iso(common.as_bytes()).is_some(),
                "{common} takes the quick path"
            );
        }
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
