//! Bodies of Outpost's fuzz targets, one function per decoder of outside bytes. The libFuzzer
//! binaries in fuzz_targets/ call them, and tests/tests/fuzz_corpus.rs replays every seed and
//! crasher through the same functions as ordinary tests.
pub mod targets;
