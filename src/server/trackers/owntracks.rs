//! OwnTracks' HTTP mode: the app POSTs each message it would publish over MQTT, one JSON
//! object a request, with HTTP Basic auth; a `_type: location` message is a position
//! (`lat`, `lon`, `tst` in Unix seconds, `acc` in metres). Every other type, and an empty
//! body (the app sends one when a friend is deleted), is accepted and ignored. The answer to
//! any request is a JSON array of messages for the app: here, a `card` and a `location` for
//! each friend the traveller may see, which the app draws on its map.
//!
//! Source: the OwnTracks booklet, <https://owntracks.org/booklet/tech/http/> and
//! <https://owntracks.org/booklet/tech/json/>.

use serde::{Deserialize, Serialize};

use super::{Fix, accuracy};

/// What one request carried.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A position.
    Location(Fix),
    /// A message of another `_type`, or an empty body: nothing to store.
    Ignored,
}

/// Why a message was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnTracksError {
    /// The body is not one JSON object with a `_type`, or a location lacks a field.
    #[error("{0}")]
    Malformed(String),
    /// The app encrypts its payloads, and this server has no key to read them.
    #[error(
        "_type: encrypted payloads are not read by this server; turn off encryption in the OwnTracks app (its Encryption Key setting), and use HTTPS"
    )]
    Encrypted,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "_type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    lat: f64,
    lon: f64,
    tst: i64,
    #[serde(default)]
    acc: Option<f64>,
}

/// Reads one request's body.
pub fn parse(body: &[u8]) -> Result<Message, OwnTracksError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Message::Ignored);
    }
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        OwnTracksError::Malformed(format!("body: not an OwnTracks JSON message: {e}"))
    })?;
    match envelope.kind.as_deref() {
        None => Err(OwnTracksError::Malformed(
            "_type: missing; every OwnTracks message has one".into(),
        )),
        Some("encrypted") => Err(OwnTracksError::Encrypted),
        Some("location") => {
            let location: Location = crate::json::from_slice_named(body)
                .map_err(|e| OwnTracksError::Malformed(e.to_string()))?;
            let ts = location.tst.checked_mul(1000).ok_or_else(|| {
                OwnTracksError::Malformed(format!("tst: {} is out of range", location.tst))
            })?;
            Ok(Message::Location(Fix {
                lat: location.lat,
                lon: location.lon,
                ts,
                accuracy_m: accuracy(location.acc),
            }))
        }
        Some(_) => Ok(Message::Ignored),
    }
}

/// A friend as the app wants to hear of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Friend {
    /// The traveller's id.
    pub id: String,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// When it was there, Unix ms.
    pub ts: i64,
}

/// One message of the answer.
#[derive(Debug, Serialize)]
#[serde(tag = "_type", rename_all = "lowercase")]
enum Out<'a> {
    Card {
        name: &'a str,
        tid: String,
        topic: String,
    },
    Location {
        lat: f64,
        lon: f64,
        tst: i64,
        tid: String,
        topic: String,
    },
}

/// The answer: a `card` (its name) and a `location` for each friend. The app tells
/// friends apart by `topic`, which names the traveller as OwnTracks' MQTT topics do
/// (`owntracks/<user>/<device>`), and shows `tid`, two letters of its id.
pub fn answer(friends: &[Friend]) -> Vec<u8> {
    let mut out = Vec::with_capacity(friends.len() * 2);
    for f in friends {
        let topic = format!("owntracks/{}/proxima", f.id);
        let tid: String =
            f.id.chars()
                .filter(|c| c.is_alphanumeric())
                .take(2)
                .collect();
        out.push(Out::Card {
            name: &f.id,
            tid: tid.clone(),
            topic: topic.clone(),
        });
        out.push(Out::Location {
            lat: f.lat,
            lon: f.lon,
            tst: f.ts.div_euclid(1000),
            tid,
            topic,
        });
    }
    serde_json::to_vec(&out).expect("messages serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The location example of the OwnTracks booklet's JSON page
    /// (<https://owntracks.org/booklet/tech/json/>, `_type=location`), with its placeholders
    /// filled in.
    const BOOKLET_LOCATION: &str = r#"{
        "_type": "location", "acc": 75, "alt": 13, "batt": 40, "bs": 1, "cog": 270,
        "conn": "w", "lat": 48.85833, "lon": 2.29513, "rad": 0, "t": "u", "tid": "JJ",
        "tst": 1376715317, "vac": 10, "vel": 54, "p": 101, "topic": "owntracks/jane/phone"
    }"#;

    /// The HTTP payload the booklet shows for Traccar
    /// (<https://owntracks.org/booklet/features/traccar/>).
    const BOOKLET_HTTP: &str =
        r#"{"lon":2.29513,"lat":48.85833,"_type":"location","tst":1497476456, "tid":"JJ"}"#;

    #[test]
    fn the_booklets_locations_read_as_positions() {
        assert_eq!(
            parse(BOOKLET_LOCATION.as_bytes()),
            Ok(Message::Location(Fix {
                lat: 48.85833,
                lon: 2.29513,
                ts: 1_376_715_317_000,
                accuracy_m: Some(75.0),
            }))
        );
        assert_eq!(
            parse(BOOKLET_HTTP.as_bytes()),
            Ok(Message::Location(Fix {
                lat: 48.85833,
                lon: 2.29513,
                ts: 1_497_476_456_000,
                accuracy_m: None,
            }))
        );
    }

    #[test]
    fn other_types_and_empty_bodies_are_ignored_and_bad_ones_named() {
        for ignored in [
            "",
            "  \n",
            r#"{"_type":"lwt","tst":1376715317}"#,
            r#"{"_type":"transition","wtst":1,"lat":1,"lon":2,"tst":3,"acc":4,"event":"enter","desc":"x","t":"c"}"#,
            r#"{"_type":"card","name":"Jane"}"#,
            r#"{"_type":"status"}"#,
        ] {
            assert_eq!(parse(ignored.as_bytes()), Ok(Message::Ignored), "{ignored}");
        }
        assert_eq!(
            parse(br#"{"_type":"encrypted","data":"abc"}"#),
            Err(OwnTracksError::Encrypted)
        );
        for (bad, field) in [
            (r#"{"lat":1,"lon":2,"tst":3}"#, "_type"),
            (r#"{"_type":"location","lon":2,"tst":3}"#, "lat"),
            (r#"{"_type":"location","lat":1,"lon":2}"#, "tst"),
            (
                r#"{"_type":"location","lat":1,"lon":2,"tst":"soon"}"#,
                "tst",
            ),
            ("[1,2]", "body"),
            ("{", "body"),
        ] {
            let e = parse(bad.as_bytes()).expect_err(bad).to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }

    #[test]
    fn the_answer_is_a_card_and_a_location_for_each_friend() {
        let out: serde_json::Value = serde_json::from_slice(&answer(&[Friend {
            id: "bob".into(),
            lat: 1.5,
            lon: 2.5,
            ts: 1_700_000_000_999,
        }]))
        .expect("JSON");
        assert_eq!(
            out,
            serde_json::json!([
                {"_type": "card", "name": "bob", "tid": "bo", "topic": "owntracks/bob/proxima"},
                {"_type": "location", "lat": 1.5, "lon": 2.5, "tst": 1_700_000_000, "tid": "bo", "topic": "owntracks/bob/proxima"},
            ])
        );
        assert_eq!(answer(&[]), b"[]");
    }
}
