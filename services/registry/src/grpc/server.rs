//! Serves any [`RegistryApi`] as `quiver.registry.v1.RegistryService`.

use std::sync::Arc;

use quiver_common::RequestContext;
use quiver_proto::registry::v1 as pb;
use quiver_proto::registry::v1::registry_service_server::{RegistryService, RegistryServiceServer};

use super::for_each_registry_rpc;
use crate::api::RegistryApi;

/// Adapts an `Arc<dyn RegistryApi>` to the generated tonic service.
#[derive(Clone)]
pub struct RegistryGrpcServer {
    api: Arc<dyn RegistryApi>,
}

impl RegistryGrpcServer {
    /// Wraps an API implementation.
    pub fn new(api: Arc<dyn RegistryApi>) -> RegistryGrpcServer {
        RegistryGrpcServer { api }
    }

    /// Returns the tonic service, ready to add to a router.
    pub fn into_service(self) -> RegistryServiceServer<RegistryGrpcServer> {
        RegistryServiceServer::new(self)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024)
    }
}

macro_rules! serve_rpcs {
    ($(($method:ident, $request:ident, $response:ident)),* $(,)?) => {
        #[tonic::async_trait]
        impl RegistryService for RegistryGrpcServer {
            $(
                async fn $method(
                    &self,
                    request: tonic::Request<pb::$request>,
                ) -> Result<tonic::Response<pb::$response>, tonic::Status> {
                    let ctx = RequestContext::from_metadata(request.metadata())?;
                    self.api
                        .$method(&ctx, request.into_inner())
                        .await
                        .map(tonic::Response::new)
                        .map_err(tonic::Status::from)
                }
            )*
        }
    };
}

for_each_registry_rpc!(serve_rpcs);
