//! Serves any [`TrackingApi`] as `quiver.tracking.v1.TrackingService`.

use std::sync::Arc;

use quiver_common::RequestContext;
use quiver_proto::tracking::v1 as pb;
use quiver_proto::tracking::v1::tracking_service_server::{TrackingService, TrackingServiceServer};

use super::for_each_tracking_rpc;
use crate::api::TrackingApi;

/// Adapts an `Arc<dyn TrackingApi>` to the generated tonic service.
#[derive(Clone)]
pub struct TrackingGrpcServer {
    api: Arc<dyn TrackingApi>,
}

impl TrackingGrpcServer {
    /// Wraps an API implementation.
    pub fn new(api: Arc<dyn TrackingApi>) -> TrackingGrpcServer {
        TrackingGrpcServer { api }
    }

    /// Returns the tonic service, ready to add to a router.
    pub fn into_service(self) -> TrackingServiceServer<TrackingGrpcServer> {
        TrackingServiceServer::new(self)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024)
    }
}

macro_rules! serve_rpcs {
    ($(($method:ident, $request:ident, $response:ident)),* $(,)?) => {
        #[tonic::async_trait]
        impl TrackingService for TrackingGrpcServer {
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

for_each_tracking_rpc!(serve_rpcs);
