//! Quiver's integration tests, one binary: the tracking API conformance suite
//! on SQLite, Postgres and over gRPC; the gateway in-process; the real binary
//! in both topologies.

mod artifacts;
mod conformance;
mod e2e;
mod gateway;
mod gc;
mod registry;
