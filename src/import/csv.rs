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

/// Reads a CSV dump with a header row.
pub fn read_csv(input: impl Read) -> Result<ParsedPois, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let header = reader.headers().map_err(csv_error)?.clone();
    let columns = Columns::from_header(&header)?;
    let mut parsed = ParsedPois::default();
    let mut row = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
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
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/cities15000.csv");
        let file = fs_err::File::open(path).expect("bundled data is present");
        let parsed = read_csv(file).expect("readable");
        assert_eq!(parsed.skipped, 0, "{:?}", parsed.errors.first());
        assert_eq!(parsed.pois.len(), 34_006);
    }
}
