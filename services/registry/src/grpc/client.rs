//! [`RegistryApi`] over a gRPC channel.

use std::time::Duration;

use async_trait::async_trait;
use quiver_common::{ApiError, RequestContext};
use quiver_proto::registry::v1 as pb;
use quiver_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::transport::{Channel, Endpoint};

use super::for_each_registry_rpc;
use crate::api::RegistryApi;

/// A remote registry service.
#[derive(Clone)]
pub struct RegistryGrpcClient {
    client: RegistryServiceClient<Channel>,
}

impl RegistryGrpcClient {
    /// Creates a client for `endpoint` (e.g. `http://registry:5001`). The
    /// connection is made lazily and re-made after failures.
    pub fn connect_lazy(endpoint: &str, timeout: Duration) -> Result<RegistryGrpcClient, ApiError> {
        let endpoint = Endpoint::from_shared(endpoint.to_string())
            .map_err(|error| ApiError::invalid(format!("invalid registry endpoint: {error}")))?
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        Ok(RegistryGrpcClient::from_channel(endpoint.connect_lazy()))
    }

    /// Creates a client over an existing channel.
    pub fn from_channel(channel: Channel) -> RegistryGrpcClient {
        RegistryGrpcClient {
            client: RegistryServiceClient::new(channel)
                .max_decoding_message_size(256 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
        }
    }
}

macro_rules! call_rpcs {
    ($(($method:ident, $request:ident, $response:ident)),* $(,)?) => {
        #[async_trait]
        impl RegistryApi for RegistryGrpcClient {
            $(
                async fn $method(
                    &self,
                    ctx: &RequestContext,
                    request: pb::$request,
                ) -> Result<pb::$response, ApiError> {
                    let mut client = self.client.clone();
                    client
                        .$method(ctx.to_request(request))
                        .await
                        .map(tonic::Response::into_inner)
                        .map_err(ApiError::from)
                }
            )*
        }
    };
}

for_each_registry_rpc!(call_rpcs);
