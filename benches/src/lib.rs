//! Benchmarks for the DEQ solver toolkit.
