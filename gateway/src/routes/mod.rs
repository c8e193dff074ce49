//! REST routes, one module per service.

pub mod artifacts;
pub mod logged_models;
pub mod misc;
pub mod registry;
pub mod tracking;
