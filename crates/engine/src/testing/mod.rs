//! Support shared by the unit tests (and, with the `testing` feature, by the tests of the
//! crates above: the proptest configuration).

#[cfg(test)]
pub(crate) mod areas;

use proptest::test_runner::{Config, FileFailurePersistence};

/// proptest's configuration for `cases` cases, saving new failure seeds beside the test's
/// own file (`<file>.regressions`), not at the crate's top level.
pub fn proptest_config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}
