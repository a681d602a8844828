//! The seam between the CRI RuntimeService and the streaming server (issue 7): Exec,
//! Attach and PortForward answer with a URL on that server. criusd's RuntimeService
//! calls whatever is installed in [`crate::daemon::Daemon::streaming`]; with nothing
//! installed the three RPCs return UNIMPLEMENTED.

use crius_proto::runtime as cri;
use crius_proto::tonic::Status;

#[crius_proto::tonic::async_trait]
pub trait Streaming: Send + Sync + 'static {
    async fn exec(&self, req: cri::ExecRequest) -> Result<cri::ExecResponse, Status>;
    async fn attach(&self, req: cri::AttachRequest) -> Result<cri::AttachResponse, Status>;
    async fn port_forward(
        &self,
        req: cri::PortForwardRequest,
    ) -> Result<cri::PortForwardResponse, Status>;
}
