//! CRI RuntimeService: the dispatch table. Each RPC checks the request's shape and hands
//! it to the service and module named after it (`pods.run` in `pod/run.rs`,
//! `containers.start_container` in `container/start.rs`, `stats.pod` in `stats/pod.rs` …).
//! Every RPC criusd does not implement answers UNIMPLEMENTED with what is missing. Each RPC
//! runs in the span [`crate::rpc`]'s layer opened (the dispatch records its pod/container id
//! there); the layer logs failures and times every RPC.

use std::pin::Pin;
use std::sync::Arc;

use crius_proto::runtime as cri;
use crius_proto::tonic::{Request, Response, Status};
use crius_proto::RuntimeService;
use futures::{Stream, StreamExt};

use crate::daemon::Daemon;

pub struct RuntimeSvc {
    pub d: Arc<Daemon>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn unimplemented(what: &str, why: &str) -> Status {
    Status::unimplemented(format!("{what} is not implemented by criusd: {why}"))
}

fn batches<T: Clone + Send + 'static, R: Send + 'static>(
    items: Vec<T>,
    wrap: fn(Vec<T>) -> R,
) -> BoxStream<R> {
    let v: Vec<Result<R, Status>> = items.chunks(100).map(|c| Ok(wrap(c.to_vec()))).collect();
    Box::pin(futures::stream::iter(v))
}

impl RuntimeSvc {
    /// The streaming server Exec/Attach/PortForward hand out URLs on.
    fn streaming(&self, rpc: &str) -> Result<Arc<dyn crate::streaming_hook::Streaming>, Status> {
        self.d
            .streaming
            .get()
            .cloned()
            .ok_or_else(|| unimplemented(rpc, "no streaming server is running"))
    }
}

#[crius_proto::tonic::async_trait]
impl RuntimeService for RuntimeSvc {
    async fn version(
        &self,
        _req: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        Ok(Response::new(cri::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "crius".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: crius_proto::CRI_API_VERSION.into(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        let req = req.into_inner();
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("pod sandbox config is missing"))?;
        crate::validate::pod_sandbox(&config)?;
        // The sandboxer records the pod id on this RPC's span as soon as it makes it.
        let id = self.d.pods.run(config, &req.runtime_handler).await?;
        Ok(Response::new(cri::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        crate::rpc::pod(&req.get_ref().pod_sandbox_id);
        self.d.pods.stop(&req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(cri::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        crate::rpc::pod(&req.get_ref().pod_sandbox_id);
        self.d.pods.remove(&req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(cri::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        crate::rpc::pod(&req.get_ref().pod_sandbox_id);
        let req = req.into_inner();
        let resp = self.d.pods.status(&req.pod_sandbox_id, req.verbose).await?;
        Ok(Response::new(resp))
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let items = self.d.pods.list(req.into_inner().filter).await?;
        Ok(Response::new(cri::ListPodSandboxResponse { items }))
    }

    type StreamPodSandboxesStream = BoxStream<cri::StreamPodSandboxesResponse>;

    async fn stream_pod_sandboxes(
        &self,
        req: Request<cri::StreamPodSandboxesRequest>,
    ) -> Result<Response<Self::StreamPodSandboxesStream>, Status> {
        let items = self.d.pods.list(req.into_inner().filter).await?;
        Ok(Response::new(batches(items, |pod_sandboxes| {
            cri::StreamPodSandboxesResponse { pod_sandboxes }
        })))
    }

    async fn create_container(
        &self,
        req: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        crate::rpc::pod(&req.get_ref().pod_sandbox_id);
        let req = req.into_inner();
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("container config is missing"))?;
        crate::validate::container(&config)?;
        let id = self
            .d
            .containers
            .create_container(&req.pod_sandbox_id, config)
            .await?;
        Ok(Response::new(cri::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        req: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        let id = req.into_inner().container_id;
        self.d.containers.start_container(&id).await?;
        Ok(Response::new(cri::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        req: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        let req = req.into_inner();
        self.d
            .containers
            .stop_container(&req.container_id, req.timeout)
            .await?;
        Ok(Response::new(cri::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        req: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        self.d
            .containers
            .remove_container(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(cri::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        req: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let containers = self.d.containers.list(req.into_inner().filter).await?;
        Ok(Response::new(cri::ListContainersResponse { containers }))
    }

    type StreamContainersStream = BoxStream<cri::StreamContainersResponse>;

    async fn stream_containers(
        &self,
        req: Request<cri::StreamContainersRequest>,
    ) -> Result<Response<Self::StreamContainersStream>, Status> {
        let items = self.d.containers.list(req.into_inner().filter).await?;
        Ok(Response::new(batches(items, |containers| {
            cri::StreamContainersResponse { containers }
        })))
    }

    async fn container_status(
        &self,
        req: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        let req = req.into_inner();
        let (status, info) = self
            .d
            .containers
            .status(&req.container_id, req.verbose)
            .await?;
        Ok(Response::new(cri::ContainerStatusResponse { status, info }))
    }

    async fn update_container_resources(
        &self,
        req: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        let req = req.into_inner();
        let linux = req
            .linux
            .ok_or_else(|| Status::invalid_argument("linux resources are missing"))?;
        crate::validate::resources(&linux)?;
        self.d
            .containers
            .update_resources(&req.container_id, &linux)
            .await?;
        Ok(Response::new(cri::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        req: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        self.d
            .containers
            .reopen_log(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(cri::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(
        &self,
        req: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        let req = req.into_inner();
        crate::validate::command(&req.cmd)?;
        let out = self
            .d
            .containers
            .exec_sync(&req.container_id, req.cmd, req.timeout)
            .await?;
        Ok(Response::new(cri::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        }))
    }

    async fn exec(
        &self,
        req: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        let s = self.streaming("Exec")?;
        let mut req = req.into_inner();
        crate::validate::command(&req.cmd)?;
        req.container_id = self
            .d
            .containers
            .streamable_container("Exec", &req.container_id)
            .await?;
        s.exec(req).await.map(Response::new)
    }

    async fn attach(
        &self,
        req: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        let s = self.streaming("Attach")?;
        let mut req = req.into_inner();
        req.container_id = self
            .d
            .containers
            .streamable_container("Attach", &req.container_id)
            .await?;
        s.attach(req).await.map(Response::new)
    }

    async fn port_forward(
        &self,
        req: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        crate::rpc::pod(&req.get_ref().pod_sandbox_id);
        let s = self.streaming("PortForward")?;
        let mut req = req.into_inner();
        req.pod_sandbox_id = self
            .d
            .pods
            .streamable_pod("PortForward", &req.pod_sandbox_id)
            .await?;
        s.port_forward(req).await.map(Response::new)
    }

    async fn container_stats(
        &self,
        req: Request<cri::ContainerStatsRequest>,
    ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
        crate::rpc::container(&req.get_ref().container_id);
        let stats = self
            .d
            .stats
            .container(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(cri::ContainerStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_container_stats(
        &self,
        req: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        let stats = self.d.stats.containers(req.into_inner().filter).await?;
        Ok(Response::new(cri::ListContainerStatsResponse { stats }))
    }

    type StreamContainerStatsStream = BoxStream<cri::StreamContainerStatsResponse>;

    async fn stream_container_stats(
        &self,
        req: Request<cri::StreamContainerStatsRequest>,
    ) -> Result<Response<Self::StreamContainerStatsStream>, Status> {
        let items = self.d.stats.containers(req.into_inner().filter).await?;
        Ok(Response::new(batches(items, |container_stats| {
            cri::StreamContainerStatsResponse { container_stats }
        })))
    }

    async fn pod_sandbox_stats(
        &self,
        req: Request<cri::PodSandboxStatsRequest>,
    ) -> Result<Response<cri::PodSandboxStatsResponse>, Status> {
        crate::rpc::pod(&req.get_ref().pod_sandbox_id);
        let stats = self.d.stats.pod(&req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(cri::PodSandboxStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        req: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        let stats = self.d.stats.pods(req.into_inner().filter).await?;
        Ok(Response::new(cri::ListPodSandboxStatsResponse { stats }))
    }

    type StreamPodSandboxStatsStream = BoxStream<cri::StreamPodSandboxStatsResponse>;

    async fn stream_pod_sandbox_stats(
        &self,
        req: Request<cri::StreamPodSandboxStatsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxStatsStream>, Status> {
        let items = self.d.stats.pods(req.into_inner().filter).await?;
        Ok(Response::new(batches(items, |pod_sandbox_stats| {
            cri::StreamPodSandboxStatsResponse { pod_sandbox_stats }
        })))
    }

    async fn update_runtime_config(
        &self,
        req: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        crate::runtime::config::update_runtime_config(&self.d.shared, req.into_inner())?;
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    async fn status(
        &self,
        req: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        let verbose = req.into_inner().verbose;
        Ok(Response::new(
            crate::runtime::status::status(&self.d, verbose).await,
        ))
    }

    async fn checkpoint_container(
        &self,
        _req: Request<cri::CheckpointContainerRequest>,
    ) -> Result<Response<cri::CheckpointContainerResponse>, Status> {
        Err(unimplemented(
            "CheckpointContainer",
            "checkpoint/restore is not supported",
        ))
    }

    type GetContainerEventsStream = BoxStream<cri::ContainerEventResponse>;

    async fn get_container_events(
        &self,
        _req: Request<cri::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        let events = self.d.containers.subscribe().map(Ok);
        Ok(Response::new(Box::pin(events)))
    }

    async fn list_metric_descriptors(
        &self,
        _req: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Result<Response<cri::ListMetricDescriptorsResponse>, Status> {
        Ok(Response::new(cri::ListMetricDescriptorsResponse {
            descriptors: crate::metrics::descriptors::list(),
        }))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _req: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<cri::ListPodSandboxMetricsResponse>, Status> {
        let pod_metrics = self.d.stats.pod_sandbox_metrics().await?;
        Ok(Response::new(cri::ListPodSandboxMetricsResponse {
            pod_metrics,
        }))
    }

    type StreamPodSandboxMetricsStream = BoxStream<cri::StreamPodSandboxMetricsResponse>;

    async fn stream_pod_sandbox_metrics(
        &self,
        _req: Request<cri::StreamPodSandboxMetricsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxMetricsStream>, Status> {
        let items = self.d.stats.pod_sandbox_metrics().await?;
        Ok(Response::new(batches(items, |pod_sandbox_metrics| {
            cri::StreamPodSandboxMetricsResponse {
                pod_sandbox_metrics,
            }
        })))
    }

    async fn runtime_config(
        &self,
        _req: Request<cri::RuntimeConfigRequest>,
    ) -> Result<Response<cri::RuntimeConfigResponse>, Status> {
        Ok(Response::new(crate::runtime::config::runtime_config(
            &self.d.shared,
        )))
    }

    async fn update_pod_sandbox_resources(
        &self,
        req: Request<cri::UpdatePodSandboxResourcesRequest>,
    ) -> Result<Response<cri::UpdatePodSandboxResourcesResponse>, Status> {
        crate::rpc::pod(&req.get_ref().pod_sandbox_id);
        let req = req.into_inner();
        self.d
            .pods
            .update_resources(
                &req.pod_sandbox_id,
                req.overhead.as_ref(),
                req.resources.as_ref(),
            )
            .await?;
        Ok(Response::new(cri::UpdatePodSandboxResourcesResponse {}))
    }
}
