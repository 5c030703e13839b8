//! End-to-end tests of mouton live in this package's test targets.
