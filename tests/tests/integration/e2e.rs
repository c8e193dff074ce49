//! The real binary in both topologies.
