//! NDJSON reader: one POI object a line, `{"id", "lat", "lon", "name", "category",
//! "tags"?, "rating"?}`, parsed line by line into a typed value (no DOM).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;

use super::{ImportError, Location, ParsedPois};
use crate::json::from_slice_named;
use crate::pois::Poi;

/// The longest line accepted; a longer one is a record error, and memory stays bounded.
const MAX_LINE: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoiLine {
    id: String,
    lat: f64,
    lon: f64,
    #[serde(default)]
    name: String,
    category: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    rating: Option<f64>,
}

/// Reads an NDJSON dump.
pub fn read_ndjson(input: impl Read) -> Result<ParsedPois, ImportError> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut parsed = ParsedPois::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
            // Skip the rest of the overlong line.
            let mut rest = Vec::new();
            while !matches!(reader.read_until(b'\n', &mut rest)?, 0) && rest.last() != Some(&b'\n')
            {
                rest.clear();
            }
            parsed.reject(
                Location::Line(number),
                format!("line is longer than {MAX_LINE} bytes"),
            );
            continue;
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        match parse(&line) {
            Ok(poi) => parsed.accept(poi),
            Err(reason) => parsed.reject(Location::Line(number), reason),
        }
    }
    Ok(parsed)
}

fn parse(line: &[u8]) -> Result<Poi, String> {
    let raw: PoiLine = from_slice_named(line).map_err(|e| e.to_string())?;
    Poi::new(
        raw.id,
        raw.lat,
        raw.lon,
        raw.name,
        raw.category,
        raw.tags,
        raw.rating,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_lines_are_read_and_bad_ones_listed_by_line() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"id\":\"a\",\"lat\":1,\"lon\":2,\"name\":\"A\",\"category\":\"cafe\",\"tags\":{\"k\":\"v\"},\"rating\":4}\n");
        input.extend_from_slice(b"\n");
        input.extend_from_slice(b"{\"id\":\"b\",\"lat\":\"1\",\"lon\":2,\"category\":\"cafe\"}\n");
        input.extend_from_slice(b"{\"id\":\"c\",\"lon\":2,\"category\":\"cafe\"}\n");
        input.extend_from_slice(b"{\"id\":\"d\",\"lat\":1,\"lon\":200,\"category\":\"cafe\"}\n");
        input.extend_from_slice(b"{\"id\":\"e\",\"lat\":1,\"lon\":2,\"category\":\"caf\xff\"}\n");
        input.extend_from_slice(b"{\"id\":\"f\",\"lat\":1,\"lon\":2,\"category\":\"park\"}");
        let parsed = read_ndjson(&input[..]).expect("readable");
        let ids: Vec<&str> = parsed.pois.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "f"]);
        assert_eq!(parsed.pois[0].tags.get("k").map(String::as_str), Some("v"));
        let lines: Vec<String> = parsed
            .errors
            .iter()
            .map(|e| e.location.to_string())
            .collect();
        assert_eq!(lines, ["line 3", "line 4", "line 5", "line 6"]);
        assert!(
            parsed.errors[0].reason.starts_with("lat"),
            "{}",
            parsed.errors[0].reason
        );
        assert!(
            parsed.errors[1].reason.contains("missing field `lat`"),
            "{}",
            parsed.errors[1].reason
        );
        assert!(
            parsed.errors[2].reason.starts_with("lon"),
            "{}",
            parsed.errors[2].reason
        );
    }
}
