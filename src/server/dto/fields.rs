//! [`ResponseFields`]: which fields of each POI a page carries (`fields=`).

/// Which fields of each POI a page carries (`fields=id,distance_m`): partial responses, as
/// Elasticsearch's `_source` filtering, for clients that need no names or tags. Fields come
/// in their usual order whatever the order asked; every field by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFields(u8);

impl ResponseFields {
    pub(super) const ID: u8 = 1;
    pub(super) const LAT: u8 = 1 << 1;
    pub(super) const LON: u8 = 1 << 2;
    pub(super) const NAME: u8 = 1 << 3;
    pub(super) const CATEGORY: u8 = 1 << 4;
    pub(super) const TAGS: u8 = 1 << 5;
    pub(super) const RATING: u8 = 1 << 6;
    pub(super) const DISTANCE_M: u8 = 1 << 7;

    /// Every field.
    pub const ALL: Self = Self(u8::MAX);

    pub(super) const NAMES: [(&'static str, u8); 8] = [
        ("id", Self::ID),
        ("lat", Self::LAT),
        ("lon", Self::LON),
        ("name", Self::NAME),
        ("category", Self::CATEGORY),
        ("tags", Self::TAGS),
        ("rating", Self::RATING),
        ("distance_m", Self::DISTANCE_M),
    ];

    /// The fields named in `text`, comma-separated; `with_distance`: whether the answer
    /// has distances (nearby) to choose.
    pub fn parse(text: &str, with_distance: bool) -> Result<Self, String> {
        let mut bits = 0;
        for name in text.split(',').map(str::trim) {
            let bit = Self::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| *b)
                .filter(|&b| with_distance || b != Self::DISTANCE_M)
                .ok_or_else(|| {
                    let known: Vec<&str> = Self::NAMES
                        .iter()
                        .map(|(n, _)| *n)
                        .filter(|n| with_distance || *n != "distance_m")
                        .collect();
                    format!(
                        "unknown field {:?}; the fields are {}",
                        name.chars().take(64).collect::<String>(),
                        known.join(", ")
                    )
                })?;
            bits |= bit;
        }
        Ok(Self(bits))
    }

    pub(super) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}
