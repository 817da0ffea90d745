//! OpenStreetMap PBF reader (`osmpbf`), using every core.
//!
//! POIs are the nodes, and the ways (as the centroid of their nodes), that carry one of
//! [`OSM_KEYS`]; the first of those keys present gives the category (`amenity=cafe` →
//! `cafe`; a bare `yes` gives the key itself, `shop=yes` → `shop`). Ids are `osm:node/<n>` and
//! `osm:way/<n>`; `name` is the name; every other tag is kept.
//!
//! Two passes over the file, each decoding blobs in parallel with rayon: the first collects
//! tagged nodes and tagged ways with their node references; the second looks up the
//! coordinates of just the nodes those ways reference. Memory beyond the POIs is the
//! referenced nodes' coordinates, not the whole file.

use std::collections::BTreeMap;
use std::io::Read;

use osmpbf::{BlobDecode, BlobReader, Element};
use rayon::prelude::*;

use super::{ImportError, Location, ParsedPois};
use crate::geometry::LatLon;
use crate::pois::{MAX_CATEGORY_BYTES, MAX_TAG_VALUE_BYTES, MAX_TAGS, Poi, is_valid_category};

/// The tags that make an element a POI, in order of precedence for the category.
pub const OSM_KEYS: [&str; 6] = [
    "amenity", "shop", "tourism", "leisure", "historic", "office",
];

/// A tagged way waiting for its nodes' coordinates.
struct PendingWay {
    id: i64,
    refs: Vec<i64>,
    tags: Vec<(String, String)>,
}

/// What one blob held.
#[derive(Default)]
struct Found {
    pois: Vec<(String, Result<Poi, String>)>,
    ways: Vec<PendingWay>,
}

/// Reads an OSM PBF extract. `open` opens the input afresh for each of the two passes.
pub fn read_osm_pbf<R, F>(open: F) -> Result<ParsedPois, ImportError>
where
    R: Read + Send,
    F: Fn() -> std::io::Result<R>,
{
    // Pass 1: tagged nodes become POIs; tagged ways wait for coordinates.
    let found = par_blocks(open()?, |block, found: &mut Found| {
        for element in block.elements() {
            match element {
                Element::Node(n) => node(n.id(), n.lat(), n.lon(), n.tags(), found),
                Element::DenseNode(n) => node(n.id(), n.lat(), n.lon(), n.tags(), found),
                Element::Way(w) => {
                    let tags: Vec<(String, String)> = w
                        .tags()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    if tags.iter().any(|(k, _)| OSM_KEYS.contains(&k.as_str())) {
                        found.ways.push(PendingWay {
                            id: w.id(),
                            refs: w.refs().collect(),
                            tags,
                        });
                    }
                }
                Element::Relation(_) => {}
            }
        }
    })?;
    let mut pois = Vec::new();
    let mut ways = Vec::new();
    for f in found {
        pois.extend(f.pois);
        ways.extend(f.ways);
    }

    // Pass 2: the coordinates of the nodes the ways reference.
    let mut wanted: Vec<i64> = ways.iter().flat_map(|w| w.refs.iter().copied()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut coordinates: Vec<(i64, [f64; 3])> = Vec::new();
    if !wanted.is_empty() {
        let wanted = &wanted;
        let found = par_blocks(open()?, |block, out: &mut Vec<(i64, [f64; 3])>| {
            for element in block.elements() {
                let (id, lat, lon) = match element {
                    Element::Node(n) => (n.id(), n.lat(), n.lon()),
                    Element::DenseNode(n) => (n.id(), n.lat(), n.lon()),
                    _ => continue,
                };
                if wanted.binary_search(&id).is_ok()
                    && let Ok(p) = LatLon::new(lat, lon)
                {
                    out.push((id, p.to_unit()));
                }
            }
        })?;
        coordinates = found.into_iter().flatten().collect();
        coordinates.sort_unstable_by_key(|(id, _)| *id);
    }
    for way in ways {
        let label = format!("osm:way/{}", way.id);
        pois.push((label.clone(), way_poi(&way, &coordinates, label)));
    }

    pois.sort_by(|a, b| a.0.cmp(&b.0));
    let mut parsed = ParsedPois::default();
    for (label, poi) in pois {
        match poi {
            Ok(poi) => parsed.accept(poi),
            Err(reason) => parsed.reject(Location::Element(label), reason),
        }
    }
    Ok(parsed)
}

/// Decodes every data blob of `input` in parallel, calling `visit` on each block with a
/// per-blob accumulator. A damaged file is an error naming the blob, never a panic.
fn par_blocks<R, T, V>(input: R, visit: V) -> Result<Vec<T>, ImportError>
where
    R: Read + Send,
    T: Default + Send,
    V: Fn(&osmpbf::PrimitiveBlock, &mut T) + Sync,
{
    let bad = |index: usize, e: &dyn std::fmt::Display| {
        ImportError::Malformed(format!(
            "osm-pbf: blob {index} is damaged or truncated: {e}"
        ))
    };
    BlobReader::new(input)
        .enumerate()
        .par_bridge()
        .map(|(index, blob)| {
            let blob = blob.map_err(|e| bad(index, &e))?;
            let mut out = T::default();
            // Decoding runs foreign parsing code on untrusted bytes; a panic there becomes an
            // error for this import rather than taking down the server.
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || -> Result<(), osmpbf::Error> {
                    if let BlobDecode::OsmData(block) = blob.decode()? {
                        visit(&block, &mut out);
                    }
                    Ok(())
                },
            ));
            match decoded {
                Ok(Ok(())) => Ok((index, out)),
                Ok(Err(e)) => Err(bad(index, &e)),
                Err(_) => Err(bad(index, &"the decoder panicked")),
            }
        })
        .collect::<Result<Vec<(usize, T)>, ImportError>>()
        .map(|mut blobs| {
            blobs.sort_by_key(|(index, _)| *index);
            blobs.into_iter().map(|(_, t)| t).collect()
        })
}

/// OSM stores coordinates as integers of 1e-7 degrees; osmpbf's conversion to degrees leaves
/// float noise (`60.169613500000004`), so round back to the stored precision (about 1 cm).
fn osm_degrees(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

fn node<'a>(
    id: i64,
    lat: f64,
    lon: f64,
    tags: impl Iterator<Item = (&'a str, &'a str)>,
    found: &mut Found,
) {
    let tags: Vec<(&str, &str)> = tags.collect();
    if !tags.iter().any(|(k, _)| OSM_KEYS.contains(k)) {
        return;
    }
    let label = format!("osm:node/{id}");
    let poi = poi(
        label.clone(),
        osm_degrees(lat),
        osm_degrees(lon),
        tags.iter().map(|&(k, v)| (k, v)),
    );
    found.pois.push((label, poi));
}

fn way_poi(
    way: &PendingWay,
    coordinates: &[(i64, [f64; 3])],
    label: String,
) -> Result<Poi, String> {
    // The centroid as the mean of unit vectors, so a way across the antimeridian or around
    // a pole lands where it is, not on the far side of the Earth.
    let mut sum = [0.0f64; 3];
    let mut missing = 0;
    for r in &way.refs {
        match coordinates.binary_search_by_key(r, |(id, _)| *id) {
            Ok(i) => (0..3).for_each(|k| sum[k] += coordinates[i].1[k]),
            Err(_) => missing += 1,
        }
    }
    if missing == way.refs.len() {
        return Err(format!(
            "none of the way's {} nodes is in the file",
            way.refs.len()
        ));
    }
    let norm = (sum[0] * sum[0] + sum[1] * sum[1] + sum[2] * sum[2]).sqrt();
    if norm < 1e-12 {
        return Err("the way's nodes have no meaningful centre".to_string());
    }
    let lat = osm_degrees((sum[2] / norm).clamp(-1.0, 1.0).asin().to_degrees());
    let lon = osm_degrees(sum[1].atan2(sum[0]).to_degrees());
    poi(
        label,
        lat,
        lon,
        way.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

fn poi<'a>(
    id: String,
    lat: f64,
    lon: f64,
    tags: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<Poi, String> {
    let tags: BTreeMap<&str, &str> = tags.collect();
    let (key, value) = OSM_KEYS
        .iter()
        .find_map(|k| tags.get(k).map(|v| (*k, *v)))
        .ok_or("no POI tag")?;
    let category =
        category(key, value).ok_or_else(|| format!("{key}={value:?} does not make a category"))?;
    let name = tags.get("name").map_or(String::new(), |n| n.to_string());
    let kept: BTreeMap<String, String> = tags
        .iter()
        .filter(|(k, v)| **k != "name" && !k.is_empty() && v.len() <= MAX_TAG_VALUE_BYTES)
        .take(MAX_TAGS)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Poi::new(id, lat, lon, name, category, kept, None).map_err(|e| e.to_string())
}

/// A category from an OSM tag value: lowercased, the first of `;`-separated values, spaces
/// as `_`, other characters dropped; `yes` means "some kind of `key`".
fn category(key: &str, value: &str) -> Option<String> {
    let first = value.split(';').next().unwrap_or("").trim().to_lowercase();
    if first == "yes" {
        return Some(key.to_string());
    }
    let cleaned: String = first
        .chars()
        .map(|c| if c == ' ' { '_' } else { c })
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .take(MAX_CATEGORY_BYTES)
        .collect();
    is_valid_category(&cleaned).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::malformed;

    const HELSINKI: &[u8] = include_bytes!("../../../../data/helsinki.osm.pbf");

    /// Fuzzing found an extract whose dense nodes' metadata deltas overflow inside osmpbf
    /// (a panic where overflow checks are on): the panic is caught, and the import is an
    /// error naming the blob.
    #[test]
    fn an_extract_whose_node_metadata_overflows_is_read_without_a_panic() {
        let crafted = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/fuzz/osm-dense-info-overflow.pbf"
        ))
        .expect("the fuzzer's input");
        let read = read_osm_pbf(|| Ok(std::io::Cursor::new(&crafted[..])));
        if cfg!(debug_assertions) {
            let message = malformed(read);
            assert!(message.starts_with("osm-pbf: blob "), "{message}");
        }
    }

    #[test]
    fn categories_come_from_the_first_poi_key_and_are_normalised() {
        assert_eq!(category("amenity", "cafe").as_deref(), Some("cafe"));
        assert_eq!(category("shop", "yes").as_deref(), Some("shop"));
        assert_eq!(
            category("amenity", "Fast Food;bar").as_deref(),
            Some("fast_food")
        );
        assert_eq!(category("tourism", "ÄÖ").as_deref(), None);
    }

    /// Counts, with osmpbf's plain sequential reader and none of the code above, the nodes
    /// and ways that carry a POI key.
    fn independent_count() -> (usize, usize) {
        let (mut nodes, mut ways) = (0, 0);
        let has_key = |mut tags: osmpbf::TagIter<'_>| tags.any(|(k, _)| OSM_KEYS.contains(&k));
        osmpbf::ElementReader::new(HELSINKI)
            .for_each(|e| match e {
                Element::Node(n) if has_key(n.tags()) => nodes += 1,
                Element::DenseNode(n) if n.tags().any(|(k, _)| OSM_KEYS.contains(&k)) => nodes += 1,
                Element::Way(w) if has_key(w.tags()) => ways += 1,
                _ => {}
            })
            .expect("the bundled extract reads");
        (nodes, ways)
    }

    #[test]
    fn the_helsinki_extract_yields_every_tagged_node_and_way() {
        let parsed = read_osm_pbf(|| Ok(HELSINKI)).expect("the bundled extract reads");
        let (nodes, ways) = independent_count();
        assert!(nodes > 1000, "thousands of tagged nodes ({nodes})");
        assert_eq!(
            parsed.pois.len() as u64 + parsed.skipped,
            (nodes + ways) as u64
        );
        let from_nodes = parsed
            .pois
            .iter()
            .filter(|p| p.id.starts_with("osm:node/"))
            .count();
        let from_ways = parsed
            .pois
            .iter()
            .filter(|p| p.id.starts_with("osm:way/"))
            .count();
        assert!(
            from_nodes > 0 && from_ways > 0,
            "{from_nodes} nodes, {from_ways} ways; {:?}",
            &parsed.errors[..3.min(parsed.errors.len())]
        );
        let cafe = parsed
            .pois
            .iter()
            .find(|p| p.category == "cafe" && !p.name.is_empty())
            .expect("a named café");
        assert!(
            (60.0..60.4).contains(&cafe.position.lat) && (24.7..25.3).contains(&cafe.position.lon),
            "{cafe:?}"
        );
        assert!(cafe.tags.contains_key("amenity") && !cafe.tags.contains_key("name"));
        let lat_text = cafe.position.lat.to_string();
        assert!(
            lat_text.len() <= "60.1234567".len(),
            "coordinates keep OSM's 1e-7 precision: {lat_text}"
        );
    }

    #[test]
    fn a_truncated_or_corrupt_extract_is_an_error_not_a_panic() {
        let truncated = &HELSINKI[..HELSINKI.len() / 2];
        // The error names the blob at fault: the extract is cut inside its fifth blob.
        let message = malformed(read_osm_pbf(|| Ok(truncated)));
        assert!(
            message.starts_with("osm-pbf: blob 4 is damaged or truncated")
                && message.contains("end of file"),
            "{message}"
        );
        let mut corrupt = HELSINKI.to_vec();
        for b in corrupt.iter_mut().skip(2000).take(64) {
            *b ^= 0x5a;
        }
        let message = malformed(read_osm_pbf(|| Ok(&corrupt[..])));
        assert!(
            message.starts_with("osm-pbf: blob 1 is damaged or truncated"),
            "{message}"
        );
        let message = malformed(read_osm_pbf(|| Ok(&b"not a pbf file at all"[..])));
        assert!(
            message.starts_with("osm-pbf: blob 0 is damaged or truncated: blob header is too big"),
            "{message}"
        );
    }
}
