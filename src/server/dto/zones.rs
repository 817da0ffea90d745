//! Privacy zones on the wire: `PUT /v1/travellers/{id}/privacy-zones/{zone}` takes
//! `{"area"}`; answers show a zone's id and area as given, never its shroud.

use serde::{Deserialize, Serialize};

use super::{AreaIn, AreaOut};
use crate::zones::PrivacyZone;

/// The body of `PUT /v1/travellers/{id}/privacy-zones/{zone}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyZoneIn {
    /// A circle or polygon.
    pub area: AreaIn,
}

/// A privacy zone as its traveller sees it.
#[derive(Debug, Serialize)]
pub struct PrivacyZoneOut<'a> {
    area: AreaOut<'a>,
    id: &'a str,
}

impl<'a> From<&'a PrivacyZone> for PrivacyZoneOut<'a> {
    fn from(zone: &'a PrivacyZone) -> Self {
        Self {
            area: zone.area().into(),
            id: zone.id(),
        }
    }
}

/// `GET /v1/travellers/{id}/privacy-zones`.
#[derive(Debug, Serialize)]
pub struct PrivacyZonesOut<'a> {
    /// By id.
    pub results: Vec<PrivacyZoneOut<'a>>,
}
