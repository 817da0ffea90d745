//! Position batches on the wire: NDJSON (one update a line) or a JSON array, parsed one
//! update at a time into typed values (no DOM of the body), so a bad update rejects only
//! itself, with its index and reason.

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::body::content_type_essence;
use super::problem::ApiError;
use crate::json::from_slice_named;
use crate::travellers::PositionUpdate;

/// The most updates one batch may carry.
pub const MAX_BATCH_UPDATES: usize = 100_000;
/// The most rejections a response lists (all are counted).
pub const MAX_LISTED_REJECTIONS: usize = 1_000;

/// One update in a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItemIn {
    id: String,
    lat: f64,
    lon: f64,
    ts: i64,
    #[serde(default)]
    accuracy_m: Option<f64>,
    #[serde(default)]
    trip_id: Option<String>,
}

/// How a batch body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// One JSON object a line.
    Ndjson,
    /// A JSON array of objects.
    JsonArray,
}

/// A parsed batch: the valid updates and the rejected ones.
#[derive(Debug, Default)]
pub struct Batch {
    /// Valid updates, in order.
    pub updates: Vec<PositionUpdate>,
    /// `(index, reason)` of the first [`MAX_LISTED_REJECTIONS`] rejected updates.
    pub rejected: Vec<(usize, String)>,
    /// How many were rejected in all.
    pub rejected_total: usize,
}

/// The latest `ts` the server takes: reports further in the future than
/// `--max-clock-skew` are refused, so that no report can pin a traveller in place (a
/// report of year 33,000 would outrank every later one until its time-to-live).
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    /// The latest `ts` taken, Unix ms.
    pub latest_ms: i64,
    /// The allowed skew, for the message.
    pub skew_ms: i64,
}

impl Horizon {
    /// Refuses a report from too far in the future.
    pub fn check(&self, update: &PositionUpdate) -> Result<(), String> {
        if update.ts > self.latest_ms {
            return Err(format!(
                "ts: {} is more than {} s ahead of the server's clock (--max-clock-skew)",
                update.ts,
                self.skew_ms / 1000
            ));
        }
        Ok(())
    }
}

impl Batch {
    fn take(&mut self, index: usize, item: &[u8], horizon: Horizon) {
        match parse_item(item).and_then(|u| horizon.check(&u).map(|()| u)) {
            Ok(update) => self.updates.push(update),
            Err(reason) => {
                self.rejected_total += 1;
                if self.rejected.len() < MAX_LISTED_REJECTIONS {
                    self.rejected.push((index, reason));
                }
            }
        }
    }
}

/// The batch format from the content type; `None` (no content type) means sniff the body.
pub fn format_of(headers: &HeaderMap) -> Result<Option<BatchFormat>, ApiError> {
    let Some(essence) = content_type_essence(headers) else {
        return Ok(None);
    };
    match essence.as_str() {
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(Some(BatchFormat::Ndjson)),
        "application/json" => Ok(Some(BatchFormat::JsonArray)),
        other => Err(ApiError::unsupported_media_type(format!(
            "content-type: expected application/x-ndjson or application/json, got {other:?}"
        ))),
    }
}

/// Parses a whole batch body; reports past `horizon` are rejected.
pub fn parse(
    body: &[u8],
    format: Option<BatchFormat>,
    horizon: Horizon,
) -> Result<Batch, ApiError> {
    let format = format.unwrap_or_else(|| match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => BatchFormat::JsonArray,
        _ => BatchFormat::Ndjson,
    });
    let mut batch = Batch::default();
    let too_many = || {
        ApiError::bad_body(format!(
            "body: a batch holds at most {MAX_BATCH_UPDATES} updates"
        ))
    };
    match format {
        BatchFormat::Ndjson => {
            let lines = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty());
            for (index, line) in lines.enumerate() {
                if index >= MAX_BATCH_UPDATES {
                    return Err(too_many());
                }
                batch.take(index, line, horizon);
            }
        }
        BatchFormat::JsonArray => {
            let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_body(format!("body: expected a JSON array of updates: {e}"))
            })?;
            if items.len() > MAX_BATCH_UPDATES {
                return Err(too_many());
            }
            for (index, item) in items.iter().enumerate() {
                batch.take(index, item.get().as_bytes(), horizon);
            }
        }
    }
    if batch.updates.is_empty() && batch.rejected_total == 0 {
        return Err(ApiError::bad_body("body: the batch holds no update"));
    }
    Ok(batch)
}

fn parse_item(item: &[u8]) -> Result<PositionUpdate, String> {
    let raw: BatchItemIn = from_slice_named(item).map_err(|e| e.to_string())?;
    PositionUpdate::new(
        raw.id,
        raw.lat,
        raw.lon,
        raw.ts,
        raw.accuracy_m,
        raw.trip_id,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY_TIME: Horizon = Horizon {
        latest_ms: i64::MAX,
        skew_ms: 0,
    };

    #[test]
    fn a_report_from_past_the_horizon_is_rejected_alone() {
        let body = b"{\"id\":\"a\",\"lat\":1,\"lon\":2,\"ts\":1000}\n{\"id\":\"b\",\"lat\":1,\"lon\":2,\"ts\":1000000000000000}\n";
        let horizon = Horizon {
            latest_ms: 86_401_000,
            skew_ms: 86_400_000,
        };
        let batch = parse(body, None, horizon).expect("a batch");
        assert_eq!(batch.updates.len(), 1);
        assert_eq!(batch.rejected[0].0, 1);
        assert!(
            batch.rejected[0].1.contains("86400 s ahead"),
            "{}",
            batch.rejected[0].1
        );
    }

    #[test]
    fn ndjson_lines_are_parsed_one_by_one_and_bad_ones_rejected_alone() {
        let body = b"{\"id\":\"a\",\"lat\":1,\"lon\":2,\"ts\":5}\n\n{\"id\":\"b\",\"lat\":91,\"lon\":2,\"ts\":5}\nnot json\r\n{\"id\":\"c\",\"lat\":1,\"lon\":2,\"ts\":7,\"speed\":3}\n";
        let batch = parse(body, Some(BatchFormat::Ndjson), ANY_TIME).expect("a batch");
        assert_eq!(batch.updates.len(), 1);
        let indexes: Vec<usize> = batch.rejected.iter().map(|r| r.0).collect();
        assert_eq!(indexes, [1, 2, 3], "blank lines are not updates");
        assert!(
            batch.rejected[0].1.starts_with("lat"),
            "{}",
            batch.rejected[0].1
        );
        assert!(
            batch.rejected[2].1.contains("speed"),
            "{}",
            batch.rejected[2].1
        );
    }

    #[test]
    fn a_json_array_is_parsed_element_by_element() {
        let body = br#"[{"id":"a","lat":1,"lon":2,"ts":5},{"id":"","lat":1,"lon":2,"ts":5},{"id":"c","lat":1,"lon":2,"ts":-1}]"#;
        let batch = parse(body, None, ANY_TIME).expect("a batch");
        assert_eq!(batch.updates.len(), 1);
        assert_eq!(
            batch.rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(batch.rejected[0].1.starts_with("id"));
        assert!(batch.rejected[1].1.starts_with("ts"));
        assert!(
            parse(b"[1, 2", Some(BatchFormat::JsonArray), ANY_TIME).is_err(),
            "a broken array is refused whole"
        );
    }
}
