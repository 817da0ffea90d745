//! [`Bounded`]: one JSON value of a streamed track file (a GeoJSON feature, a timeline
//! segment) read into a `serde_json::Value` only up to a number of values, so that one
//! record cannot take the memory its file's size allows.
//!
//! The files are read a record at a time, but a record is read whole: a GeoJSON track
//! written as one `LineString` with its `coordTimes` (as `togeojson` writes a GPX track)
//! in a 1 GiB upload was 4 to 5 GB of `Value`s. A record past the bound is read on to its
//! end and dropped, and the reader rejects it by its position.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The most values (numbers, strings, booleans, nulls, arrays and objects) one record of
/// a track file may hold: about 200,000 positions with their times, some 40 MB in memory.
pub const MAX_RECORD_VALUES: usize = 1_000_000;

/// Reads one value, giving `None` (having read past it) when it holds more than
/// `max_values`.
#[derive(Debug, Clone, Copy)]
pub struct Bounded {
    /// The most values it may hold.
    pub max_values: usize,
}

impl Bounded {
    /// The bound of one record of a track file.
    pub const RECORD: Self = Self {
        max_values: MAX_RECORD_VALUES,
    };
}

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Value>, D::Error> {
        let mut left = self.max_values;
        let value = Budgeted { left: &mut left }.deserialize(deserializer)?;
        Ok(value)
    }
}

/// One value within what is `left` of a budget that several values may share (the
/// members of one record read apart); `None` once the budget is spent (the rest of the
/// value is still read, and nothing of it kept).
pub struct Budgeted<'a> {
    left: &'a mut usize,
}

impl<'a> Budgeted<'a> {
    /// A value within what is `left`, which it spends.
    pub fn new(left: &'a mut usize) -> Self {
        Self { left }
    }
}

impl Budgeted<'_> {
    /// Takes one value from the budget; `false` when none is left.
    fn take(&mut self) -> bool {
        match self.left.checked_sub(1) {
            Some(rest) => {
                *self.left = rest;
                true
            }
            None => false,
        }
    }

    fn kept(&mut self, value: Value) -> Option<Value> {
        self.take().then_some(value)
    }
}

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Value>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(mut self, v: bool) -> Result<Option<Value>, E> {
        Ok(self.kept(Value::Bool(v)))
    }

    fn visit_i64<E>(mut self, v: i64) -> Result<Option<Value>, E> {
        Ok(self.kept(Value::Number(v.into())))
    }

    fn visit_u64<E>(mut self, v: u64) -> Result<Option<Value>, E> {
        Ok(self.kept(Value::Number(v.into())))
    }

    fn visit_f64<E>(mut self, v: f64) -> Result<Option<Value>, E> {
        // JSON has no NaN or infinity, so every number read is finite.
        Ok(Number::from_f64(v).and_then(|n| self.kept(Value::Number(n))))
    }

    fn visit_str<E>(mut self, v: &str) -> Result<Option<Value>, E> {
        Ok(self.kept(Value::String(v.to_owned())))
    }

    fn visit_string<E>(mut self, v: String) -> Result<Option<Value>, E> {
        Ok(self.kept(Value::String(v)))
    }

    fn visit_unit<E>(mut self) -> Result<Option<Value>, E> {
        Ok(self.kept(Value::Null))
    }

    fn visit_none<E>(mut self) -> Result<Option<Value>, E> {
        Ok(self.kept(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Option<Value>, A::Error> {
        let mut whole = self.take();
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Budgeted {
            left: &mut *self.left,
        })? {
            match item {
                Some(item) if whole => items.push(item),
                _ => {
                    whole = false;
                    items = Vec::new();
                }
            }
        }
        Ok(whole.then_some(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Option<Value>, A::Error> {
        let mut whole = self.take();
        let mut entries = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Budgeted {
                left: &mut *self.left,
            })?;
            match value {
                Some(value) if whole => {
                    entries.insert(key, value);
                }
                _ => {
                    whole = false;
                    entries = Map::new();
                }
            }
        }
        Ok(whole.then_some(Value::Object(entries)))
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeSeed;
    use serde_json::json;

    use super::*;

    fn read(text: &str, max_values: usize) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_str(text);
        Bounded { max_values }
            .deserialize(&mut de)
            .expect("valid JSON")
    }

    #[test]
    fn a_value_within_the_bound_is_read_as_serde_json_reads_it() {
        let value = json!({"type": "Feature", "geometry": {"type": "LineString",
            "coordinates": [[2.35, 48.85], [2.36, -48.86e-3]]},
            "properties": {"coordTimes": ["2024-01-01T11:00:00Z", 1_704_106_860_000i64],
                           "ok": true, "none": null, "big": 18_446_744_073_709_551_615u64}});
        let text = value.to_string();
        fn count(v: &Value) -> usize {
            1 + match v {
                Value::Array(items) => items.iter().map(count).sum(),
                Value::Object(entries) => entries.values().map(count).sum(),
                _ => 0,
            }
        }
        let count = count(&value);
        assert_eq!(count, 18);
        assert_eq!(read(&text, count), Some(value.clone()));
        assert_eq!(read(&text, count - 1), None);
        assert_eq!(read("[]", 1), Some(json!([])));
        assert_eq!(read("[]", 0), None);
    }

    #[test]
    fn a_value_past_the_bound_is_read_to_its_end_and_what_follows_is_read() {
        let text = r#"[{"coordinates": [[1, 2], [3, 4], [5, 6]]}, {"a": 1}]"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let items: Vec<Option<Value>> = {
            struct Each;
            impl<'de> Visitor<'de> for Each {
                type Value = Vec<Option<Value>>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an array")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some(v) = seq.next_element_seed(Bounded { max_values: 4 })? {
                        out.push(v);
                    }
                    Ok(out)
                }
            }
            de.deserialize_seq(Each).expect("valid")
        };
        assert_eq!(items, vec![None, Some(json!({"a": 1}))]);
    }
}
