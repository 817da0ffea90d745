//! CSV reader (the `csv` crate, streaming record by record).
//!
//! Columns are matched by header name, case-insensitively: `id`, `lat`, `lon`, `name`,
//! `category` and optional `rating`. GeoNames-style headers are recognised too
//! (`geonameid`, `latitude`, `longitude`; `lng` also works for `lon`); a GeoNames file with no
//! `category` column is a gazetteer of places, imported as category `city`. Every other column
//! becomes a tag (empty cells are left out).

use std::collections::BTreeMap;
use std::io::Read;

use super::{ImportError, Location, ParsedPois};
use crate::pois::Poi;

/// The category given to rows of a GeoNames-style file without a `category` column.
const GAZETTEER_CATEGORY: &str = "city";

struct Columns {
    id: usize,
    lat: usize,
    lon: usize,
    name: usize,
    category: Option<usize>,
    rating: Option<usize>,
    /// Tag columns: index and key.
    tags: Vec<(usize, String)>,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, ImportError> {
        let names: Vec<String> = header
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let find = |aliases: &[&str]| names.iter().position(|n| aliases.contains(&n.as_str()));
        let need = |aliases: &[&str]| {
            find(aliases).ok_or_else(|| {
                ImportError::Malformed(format!(
                    "CSV header (line 1) has no `{}` column; found: {}",
                    aliases[0],
                    names.join(",")
                ))
            })
        };
        let id = need(&["id", "geonameid"])?;
        let lat = need(&["lat", "latitude"])?;
        let lon = need(&["lon", "longitude", "lng"])?;
        let name = need(&["name"])?;
        let category = find(&["category"]);
        if category.is_none() && names[id] != "geonameid" {
            return Err(ImportError::Malformed(
                "CSV header (line 1) has no `category` column".to_string(),
            ));
        }
        let rating = find(&["rating"]);
        let known = [Some(id), Some(lat), Some(lon), Some(name), category, rating];
        let tags = header
            .iter()
            .enumerate()
            .filter(|(i, _)| !known.contains(&Some(*i)))
            .map(|(i, h)| (i, h.trim().to_string()))
            .collect();
        Ok(Self {
            id,
            lat,
            lon,
            name,
            category,
            rating,
            tags,
        })
    }

    fn poi(&self, row: &csv::StringRecord) -> Result<Poi, String> {
        let field = |i: usize| row.get(i).unwrap_or("").trim();
        let number = |i: usize, what: &str| -> Result<f64, String> {
            let text = field(i);
            text.parse::<f64>()
                .map_err(|_| format!("{what}: expected a number, got {text:?}"))
        };
        let lat = number(self.lat, "lat")?;
        let lon = number(self.lon, "lon")?;
        let rating = match self.rating.map(field) {
            None | Some("") => None,
            Some(_) => Some(number(self.rating.expect("checked above"), "rating")?),
        };
        let category = self.category.map_or(GAZETTEER_CATEGORY, field);
        let tags: BTreeMap<String, String> = self
            .tags
            .iter()
            .filter(|(i, _)| !field(*i).is_empty())
            .map(|(i, key)| (key.clone(), field(*i).to_string()))
            .collect();
        Poi::new(
            field(self.id).to_string(),
            lat,
            lon,
            field(self.name).to_string(),
            category.to_string(),
            tags,
            rating,
        )
        .map_err(|e| e.to_string())
    }
}

/// The longest record (the header included) accepted, in bytes: the CSV parser holds a
/// whole record in memory, so without a cap one endless line would take all of it.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Why the input stopped: a record grew past [`MAX_RECORD_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("a CSV record (the header included) may be at most {MAX_RECORD_BYTES} bytes")]
struct RecordTooLong;

/// The input, failing once [`MAX_RECORD_BYTES`] (plus the parser's read-ahead) have been
/// read since the last record ended. The reader moves `record_start` on after each record.
struct RecordCap<R> {
    inner: R,
    read: u64,
    record_start: std::rc::Rc<std::cell::Cell<u64>>,
}

/// What the CSV parser may have read beyond the record it is in (its buffer).
const READ_AHEAD: u64 = 64 * 1024;

impl<R: Read> Read for RecordCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read - self.record_start.get() > MAX_RECORD_BYTES + READ_AHEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                RecordTooLong,
            ));
        }
        Ok(n)
    }
}

/// Reads a CSV dump with a header row.
pub fn read_csv(input: impl Read) -> Result<ParsedPois, ImportError> {
    let record_start = std::rc::Rc::new(std::cell::Cell::new(0));
    let capped = RecordCap {
        inner: input,
        read: 0,
        record_start: record_start.clone(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(READ_AHEAD as usize)
        .from_reader(capped);
    let header = reader.headers().map_err(csv_error)?.clone();
    record_start.set(reader.position().byte());
    let columns = Columns::from_header(&header)?;
    let mut parsed = ParsedPois::default();
    let mut row = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                record_start.set(reader.position().byte());
                let line = row.position().map_or(0, csv::Position::line);
                if row.len() != header.len() {
                    let reason = format!(
                        "row has {} fields, the header has {}",
                        row.len(),
                        header.len()
                    );
                    parsed.reject(Location::Line(line), reason);
                    continue;
                }
                match columns.poi(&row) {
                    Ok(poi) => parsed.accept(poi),
                    Err(reason) => parsed.reject(Location::Line(line), reason),
                }
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos, .. } => {
                    let line = pos.as_ref().map_or(0, csv::Position::line);
                    parsed.reject(Location::Line(line), "row is not valid UTF-8".to_string());
                }
                _ => return Err(csv_error(e)),
            },
        }
    }
    Ok(parsed)
}

fn csv_error(e: csv::Error) -> ImportError {
    if e.is_io_error() {
        match e.into_kind() {
            csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|e| e.is::<RecordTooLong>()) => {
                ImportError::Malformed(format!("CSV: {}", RecordTooLong))
            }
            csv::ErrorKind::Io(io) => ImportError::Io(io),
            other => ImportError::Malformed(format!("{other:?}")),
        }
    } else {
        ImportError::Malformed(format!("CSV: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_header_with_tags_rating_and_bad_rows() {
        let input = "id,lat,lon,name,category,rating,cuisine\n\
                     a,60.1,24.9,Café A,cafe,4.5,coffee\n\
                     b,91,24.9,Bad,cafe,,\n\
                     c,60.2,x,Bad,cafe,,\n\
                     d,60.3,25.0,D,Museum,,\n\
                     e,60.4,25.1,E,museum,,\n\
                     f,60.5\n";
        let parsed = read_csv(input.as_bytes()).expect("readable");
        let ids: Vec<&str> = parsed.pois.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "e"]);
        assert_eq!(parsed.pois[0].rating, Some(4.5));
        assert_eq!(
            parsed.pois[0].tags.get("cuisine").map(String::as_str),
            Some("coffee")
        );
        assert!(parsed.pois[1].tags.is_empty(), "empty cells are not tags");
        assert_eq!(parsed.skipped, 4);
        let lines: Vec<&Location> = parsed.errors.iter().map(|e| &e.location).collect();
        assert_eq!(
            lines,
            [
                &Location::Line(3),
                &Location::Line(4),
                &Location::Line(5),
                &Location::Line(7)
            ]
        );
        assert!(parsed.errors[0].reason.starts_with("lat"));
        assert!(parsed.errors[1].reason.starts_with("lon"));
        assert!(parsed.errors[2].reason.starts_with("category"));
    }

    #[test]
    fn a_csv_header_or_record_over_a_mib_is_refused_without_holding_it() {
        // An endless header: refused once the cap is passed, not read to its end.
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(b'a');
                self.0 += buf.len() as u64;
                assert!(self.0 < 8 * MAX_RECORD_BYTES, "read far past the cap");
                Ok(buf.len())
            }
        }
        let err = read_csv(Endless(0)).expect_err("endless header");
        assert!(
            matches!(&err, ImportError::Malformed(m) if m.contains("at most 1048576 bytes")),
            "{err}"
        );
        let long_row = format!(
            "id,lat,lon,name,category\na,1,2,{},cafe\n",
            "n".repeat(MAX_RECORD_BYTES as usize + READ_AHEAD as usize + 1)
        );
        assert!(read_csv(long_row.as_bytes()).is_err(), "an overlong record");
        // Many records of ordinary size add up to far more than the cap, and are fine.
        let mut many = String::from("id,lat,lon,name,category\n");
        for i in 0..40_000 {
            many.push_str(&format!("p{i},1,2,{},cafe\n", "n".repeat(40)));
        }
        assert!(many.len() as u64 > MAX_RECORD_BYTES);
        assert_eq!(read_csv(many.as_bytes()).expect("fine").pois.len(), 40_000);
    }

    #[test]
    fn geonames_header_imports_cities() {
        let input = "geonameid,name,latitude,longitude,countrycode,population\n\
                     658225,Helsinki,60.16952,24.93545,FI,558457\n";
        let parsed = read_csv(input.as_bytes()).expect("readable");
        assert_eq!(parsed.pois.len(), 1);
        let p = &parsed.pois[0];
        assert_eq!(
            (p.id.as_str(), p.category.as_str(), p.name.as_str()),
            ("658225", "city", "Helsinki")
        );
        assert_eq!(p.tags.get("countrycode").map(String::as_str), Some("FI"));
    }

    #[test]
    fn a_header_without_coordinates_is_refused_whole() {
        let err = read_csv("id,name,category\na,A,cafe\n".as_bytes()).expect_err("no lat column");
        assert!(err.to_string().contains("`lat`"), "{err}");
    }

    #[test]
    fn the_bundled_gazetteer_reads_without_errors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/cities15000.csv");
        let file = fs_err::File::open(path).expect("bundled data is present");
        let parsed = read_csv(file).expect("readable");
        assert_eq!(parsed.skipped, 0, "{:?}", parsed.errors.first());
        assert_eq!(parsed.pois.len(), 34_006);
    }
}
