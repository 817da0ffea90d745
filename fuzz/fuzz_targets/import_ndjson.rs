//! The NDJSON import reader, on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = proxima::import::read_ndjson(data);
});
