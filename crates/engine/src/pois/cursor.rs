//! Page cursors: opaque, tamper-evident tokens that say where the previous page ended.
//!
//! A cursor is `base64url(payload ‖ tag)`: the payload is the last result's ranking key
//! (`(distance, id)` for nearby, `id` for within) and the tag is an HMAC-SHA256 (truncated to
//! 128 bits) over the payload *and the query it belongs to* (centre, radius, box, filters).
//! So a forged or altered cursor, or one replayed against another query, fails to verify and
//! is refused rather than silently skipping or repeating results. The page size may change
//! between pages. Keyset paging on the ranking key is what makes "no POI twice, none skipped"
//! hold while the ranking is stable.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::query::{AreaQuery, NearbyQuery, PoiFilter, WithinQuery};
use crate::geometry::area::Area;

/// The longest cursor string accepted, in bytes (a cursor holds at most a 128-byte id).
const MAX_CURSOR_LEN: usize = 400;
const TAG_LEN: usize = 16;
const NEARBY: u8 = 1;
const WITHIN: u8 = 2;
const AREA: u8 = 3;
const TRAVELLERS_AREA: u8 = 4;
const LISTING: u8 = 5;

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor this server issued for this query (malformed, altered, or from another
    /// query).
    #[error(
        "cursor is not valid for this query (altered, truncated, or issued for different parameters)"
    )]
    Invalid,
}

/// The secret that signs cursors.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// A key derived from a configured secret, so that cursors stay valid across restarts
    /// and across servers sharing the secret.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    /// A fresh random key: cursors are valid for this process's lifetime.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system provides randomness");
        Self(key)
    }

    /// A cursor pointing after `(distance, id)` in the ranking of `query`.
    pub fn nearby_cursor(&self, query: &NearbyQuery, distance: f64, id: &str) -> String {
        let mut payload = vec![NEARBY];
        payload.extend_from_slice(&distance.to_bits().to_le_bytes());
        payload.extend_from_slice(id.as_bytes());
        self.seal(&nearby_context(query), payload)
    }

    /// The `(distance, id)` a nearby cursor points after, if it was issued for `query`.
    pub fn nearby_after(
        &self,
        query: &NearbyQuery,
        cursor: &str,
    ) -> Result<(f64, String), CursorError> {
        let payload = self.open(&nearby_context(query), cursor)?;
        match payload.split_first() {
            Some((&NEARBY, rest)) if rest.len() > 8 => {
                let (bits, id) = rest.split_at(8);
                let distance =
                    f64::from_bits(u64::from_le_bytes(bits.try_into().expect("8 bytes")));
                let id = String::from_utf8(id.to_vec()).map_err(|_| CursorError::Invalid)?;
                Ok((distance, id))
            }
            _ => Err(CursorError::Invalid),
        }
    }

    /// A cursor pointing after `id` in the results of `query`.
    pub fn within_cursor(&self, query: &WithinQuery, id: &str) -> String {
        self.id_cursor(WITHIN, &within_context(query), id)
    }

    /// The id a within cursor points after, if it was issued for `query`.
    pub fn within_after(&self, query: &WithinQuery, cursor: &str) -> Result<String, CursorError> {
        self.id_after(WITHIN, &within_context(query), cursor)
    }

    /// A cursor pointing after `id` in the POIs inside `query`'s area.
    pub fn area_cursor(&self, query: &AreaQuery, id: &str) -> String {
        self.id_cursor(AREA, &area_context(query), id)
    }

    /// The id an area cursor points after, if it was issued for `query`.
    pub fn area_after(&self, query: &AreaQuery, cursor: &str) -> Result<String, CursorError> {
        self.id_after(AREA, &area_context(query), cursor)
    }

    /// A cursor pointing after traveller `id` among those inside `area` that `viewer` sees.
    pub fn travellers_area_cursor(&self, area: &Area, viewer: Option<&str>, id: &str) -> String {
        self.id_cursor(TRAVELLERS_AREA, &travellers_area_context(area, viewer), id)
    }

    /// The traveller id a travellers-in-area cursor points after, if it was issued for the
    /// same area and viewer.
    pub fn travellers_area_after(
        &self,
        area: &Area,
        viewer: Option<&str>,
        cursor: &str,
    ) -> Result<String, CursorError> {
        self.id_after(
            TRAVELLERS_AREA,
            &travellers_area_context(area, viewer),
            cursor,
        )
    }

    /// A cursor pointing after `id` in a listing by id (`listing` names it: the fences, who
    /// is inside fence `f`, ...).
    pub fn listing_cursor(&self, listing: &str, id: &str) -> String {
        self.id_cursor(LISTING, &listing_context(listing), id)
    }

    /// The id a listing cursor points after, if it was issued for `listing`.
    pub fn listing_after(&self, listing: &str, cursor: &str) -> Result<String, CursorError> {
        self.id_after(LISTING, &listing_context(listing), cursor)
    }

    fn id_cursor(&self, kind: u8, context: &[u8], id: &str) -> String {
        let mut payload = vec![kind];
        payload.extend_from_slice(id.as_bytes());
        self.seal(context, payload)
    }

    fn id_after(&self, kind: u8, context: &[u8], cursor: &str) -> Result<String, CursorError> {
        let payload = self.open(context, cursor)?;
        match payload.split_first() {
            Some((&k, id)) if k == kind && !id.is_empty() => {
                String::from_utf8(id.to_vec()).map_err(|_| CursorError::Invalid)
            }
            _ => Err(CursorError::Invalid),
        }
    }

    fn mac(&self, context: &[u8], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(&(context.len() as u64).to_le_bytes());
        mac.update(context);
        mac.update(payload);
        mac
    }

    fn seal(&self, context: &[u8], mut payload: Vec<u8>) -> String {
        let tag = self.mac(context, &payload).finalize().into_bytes();
        payload.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(payload)
    }

    fn open(&self, context: &[u8], cursor: &str) -> Result<Vec<u8>, CursorError> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(CursorError::Invalid);
        }
        let mut bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| CursorError::Invalid)?;
        if bytes.len() <= TAG_LEN {
            return Err(CursorError::Invalid);
        }
        let tag = bytes.split_off(bytes.len() - TAG_LEN);
        self.mac(context, &bytes)
            .verify_truncated_left(&tag)
            .map_err(|_| CursorError::Invalid)?;
        Ok(bytes)
    }
}

fn filter_context(out: &mut Vec<u8>, filter: &PoiFilter) {
    let mut categories: Vec<&str> = filter.categories.iter().map(String::as_str).collect();
    categories.sort_unstable();
    categories.dedup();
    for c in categories {
        out.extend_from_slice(&(c.len() as u64).to_le_bytes());
        out.extend_from_slice(c.as_bytes());
    }
    out.push(0xff);
    out.extend_from_slice(
        &filter
            .min_rating
            .map_or(u64::MAX, f64::to_bits)
            .to_le_bytes(),
    );
}

fn nearby_context(query: &NearbyQuery) -> Vec<u8> {
    let mut out = vec![NEARBY];
    out.extend_from_slice(&query.center.lat.to_bits().to_le_bytes());
    out.extend_from_slice(&query.center.lon.to_bits().to_le_bytes());
    out.extend_from_slice(&query.radius_m.map_or(u64::MAX, f64::to_bits).to_le_bytes());
    filter_context(&mut out, &query.filter);
    out
}

fn within_context(query: &WithinQuery) -> Vec<u8> {
    let mut out = vec![WITHIN];
    let b = query.bbox;
    for v in [b.min_lon, b.min_lat, b.max_lon, b.max_lat] {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    filter_context(&mut out, &query.filter);
    out
}

fn listing_context(listing: &str) -> Vec<u8> {
    let mut out = vec![LISTING];
    out.extend_from_slice(listing.as_bytes());
    out
}

fn area_context(query: &AreaQuery) -> Vec<u8> {
    let mut out = vec![AREA];
    query.area.digest(&mut out);
    filter_context(&mut out, &query.filter);
    out
}

fn travellers_area_context(area: &Area, viewer: Option<&str>) -> Vec<u8> {
    let mut out = vec![TRAVELLERS_AREA];
    area.digest(&mut out);
    match viewer {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v.as_bytes());
        }
        None => out.push(0),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BBox, LatLon};

    fn nearby(lat: f64) -> NearbyQuery {
        NearbyQuery {
            center: LatLon::new(lat, 24.9).expect("valid"),
            radius_m: Some(1000.0),
            limit: 10,
            filter: PoiFilter::default(),
            after: None,
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_query_only() {
        let key = CursorKey::random();
        let cursor = key.nearby_cursor(&nearby(60.0), 12.5, "poi-7");
        assert_eq!(
            key.nearby_after(&nearby(60.0), &cursor),
            Ok((12.5, "poi-7".to_string()))
        );
        assert_eq!(
            key.nearby_after(&nearby(60.1), &cursor),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            CursorKey::random().nearby_after(&nearby(60.0), &cursor),
            Err(CursorError::Invalid)
        );
    }

    #[test]
    fn any_altered_character_is_refused() {
        let key = CursorKey::from_secret(b"s");
        let query = WithinQuery {
            bbox: BBox::new(0.0, 0.0, 1.0, 1.0).expect("valid"),
            limit: 5,
            filter: PoiFilter::default(),
            after: None,
        };
        let cursor = key.within_cursor(&query, "abc");
        assert_eq!(key.within_after(&query, &cursor), Ok("abc".to_string()));
        for i in 0..cursor.len() {
            let mut forged = cursor.clone().into_bytes();
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).expect("ascii");
            assert_eq!(
                key.within_after(&query, &forged),
                Err(CursorError::Invalid),
                "position {i}"
            );
        }
        assert_eq!(
            key.within_after(&query, "garbage!"),
            Err(CursorError::Invalid)
        );
    }
}
