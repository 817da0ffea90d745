//! JSON written by hand for the hottest answers (pages of POIs): strings and numbers, byte
//! for byte what `serde_json` writes for the same values.
//!
//! Why by hand: `serde_json` escapes every string byte by byte, field names included, and a
//! page of 20 POIs is over a hundred short strings. Here a string that needs no escaping
//! (nearly all of them) is checked in one pass the compiler vectorises and copied whole, and
//! field names are constants written as they are. Anything that does need escaping, and
//! every number, is still written by `serde_json`, so the output is its output; the tests
//! in `dto::pois` compare whole pages with `serde_json::to_vec`.

/// Writes `s` as a JSON string.
pub fn string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        serde_json::to_writer(&mut *out, s).expect("writing to a vector cannot fail");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Writes `x` as a JSON number (`null` if it is not finite, as `serde_json` does).
pub fn number(out: &mut Vec<u8>, x: f64) {
    serde_json::to_writer(&mut *out, &x).expect("writing to a vector cannot fail");
}

/// Whether JSON needs any byte of `bytes` escaped: a control character, `"` or `\`. The
/// same set as `serde_json`'s escape table. A fold rather than `any`, so that it has no
/// early exit and compiles to vector compares.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn strings_needing_escapes_are_escaped() {
        for s in [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{1}",
            "café ☕",
            "\u{7f}",
        ] {
            assert_eq!(
                written(|o| string(o, s)),
                serde_json::to_string(s).expect("serializes"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        for x in [
            0.0,
            -0.0,
            1.0,
            60.1699,
            -179.999_999,
            1e21,
            1e-7,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert_eq!(
                written(|o| number(o, x)),
                serde_json::to_string(&x).expect("serializes"),
                "{x}"
            );
        }
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(256))]

        #[test]
        fn any_string_is_written_as_serde_json_writes_it(s in any::<String>()) {
            prop_assert_eq!(written(|o| string(o, &s)), serde_json::to_string(&s).expect("serializes"));
        }
    }
}
