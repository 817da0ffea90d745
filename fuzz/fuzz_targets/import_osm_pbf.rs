//! The OpenStreetMap PBF import reader (both passes), on any bytes. The reader catches a
//! panic of the PBF decoder (osmpbf, foreign code) and answers an error for the blob; the
//! target lets it, and fails on any panic that gets out.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proxima_fuzz::tolerate_caught_panics();
    let _ = proxima::import::read_osm_pbf(|| Ok(std::io::Cursor::new(data)));
});
