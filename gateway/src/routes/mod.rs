//! REST routes, one module per service.

pub mod misc;
pub mod tracking;
