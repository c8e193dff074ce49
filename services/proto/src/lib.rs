//! Generated protobuf messages and tonic services for Quiver's gRPC APIs.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod common {
    pub mod v1 {
        tonic::include_proto!("quiver.common.v1");
    }
}

pub mod tracking {
    pub mod v1 {
        tonic::include_proto!("quiver.tracking.v1");
    }
}

pub mod artifacts {
    pub mod v1 {
        tonic::include_proto!("quiver.artifacts.v1");
    }
}

pub mod registry {
    pub mod v1 {
        tonic::include_proto!("quiver.registry.v1");
    }
}

/// The encoded `FileDescriptorSet` of every Quiver proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("quiver_descriptor");
