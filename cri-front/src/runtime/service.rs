//! CRI RuntimeService: thin request validation and mapping over [`Daemon`]. Every
//! RPC criusd does not implement yet answers UNIMPLEMENTED with what is missing.

use std::pin::Pin;
use std::sync::Arc;

use crius_proto::runtime as cri;
use crius_proto::tonic::{Request, Response, Status};
use crius_proto::RuntimeService;
use crius_sandboxer::cgroup::CgroupDriver;
use futures::Stream;

use crate::container::status::{matches, to_cri};
use crate::daemon::Daemon;
use crate::error::Error;
use crate::pod;

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

    async fn list_containers_inner(
        &self,
        filter: Option<cri::ContainerFilter>,
    ) -> Result<Vec<cri::Container>, Status> {
        let all = self.d.all_refreshed().await?;
        let f = filter.unwrap_or_default();
        Ok(all.iter().filter(|r| matches(r, &f)).map(to_cri).collect())
    }

    async fn list_pods_inner(
        &self,
        filter: Option<cri::PodSandboxFilter>,
    ) -> Result<Vec<cri::PodSandbox>, Status> {
        let f = filter.unwrap_or_default();
        let pods = self.d.sandboxer.list().await.map_err(Error::from)?;
        Ok(pods
            .iter()
            .filter(|p| pod::matches(p, &f))
            .map(pod::to_cri)
            .collect())
    }

    async fn container_stats_inner(
        &self,
        f: Option<cri::ContainerStatsFilter>,
    ) -> Result<Vec<cri::ContainerStats>, Status> {
        let f = f.unwrap_or_default();
        let cf = cri::ContainerFilter {
            id: f.id,
            pod_sandbox_id: f.pod_sandbox_id,
            label_selector: f.label_selector,
            state: Some(cri::ContainerStateValue {
                state: cri::ContainerState::ContainerRunning as i32,
            }),
        };
        let mut out = Vec::new();
        for r in self.d.all_refreshed().await? {
            if matches(&r, &cf) {
                out.push(self.d.container_stats(&r).await);
            }
        }
        Ok(out)
    }

    async fn pod_stats_inner(
        &self,
        f: Option<cri::PodSandboxStatsFilter>,
    ) -> Result<Vec<cri::PodSandboxStats>, Status> {
        let f = f.unwrap_or_default();
        let pf = cri::PodSandboxFilter {
            id: f.id,
            label_selector: f.label_selector,
            state: Some(cri::PodSandboxStateValue {
                state: cri::PodSandboxState::SandboxReady as i32,
            }),
        };
        let pods = self.d.sandboxer.list().await.map_err(Error::from)?;
        let containers = self.d.all_refreshed().await?;
        let mut out = Vec::new();
        for p in pods.iter().filter(|p| pod::matches(p, &pf)) {
            let (cpu, memory, sample) = self
                .d
                .cgroup_usage(&format!("pod:{}", p.id), &p.cgroup_parent);
            let mut cs = Vec::new();
            for r in containers
                .iter()
                .filter(|r| r.pod_id == p.id && r.phase == crate::container::record::Phase::Running)
            {
                cs.push(self.d.container_stats(r).await);
            }
            out.push(cri::PodSandboxStats {
                attributes: Some(cri::PodSandboxAttributes {
                    id: p.id.clone(),
                    metadata: pod::to_cri(p).metadata,
                    labels: p.config.labels.clone().into_iter().collect(),
                    annotations: p.config.annotations.clone().into_iter().collect(),
                }),
                linux: Some(cri::LinuxPodSandboxStats {
                    cpu: Some(cpu),
                    memory: Some(memory),
                    // hostNetwork pods would report the host's interfaces: none then.
                    network: p
                        .pause_pid
                        .filter(|_| p.netns_path.is_some())
                        .and_then(crate::container::stats::network_usage),
                    process: sample.pids.map(|n| cri::ProcessUsage {
                        timestamp: cpu.timestamp,
                        process_count: Some(cri::UInt64Value { value: n }),
                    }),
                    containers: cs,
                    io: None,
                }),
                windows: None,
            });
        }
        Ok(out)
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
        let id = self
            .d
            .run_pod(config, &req.runtime_handler)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "RunPodSandbox failed"))?;
        Ok(Response::new(cri::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        self.d.stop_pod(&req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(cri::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        self.d.remove_pod(&req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(cri::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        let req = req.into_inner();
        let p = self.d.find_pod(&req.pod_sandbox_id).await?;
        let mut info = std::collections::HashMap::new();
        if req.verbose {
            if let Ok(j) = serde_json::to_string(&p) {
                info.insert("info".to_string(), j);
            }
        }
        let recs: Vec<_> = self
            .d
            .all_refreshed()
            .await?
            .into_iter()
            .filter(|r| r.pod_id == p.id)
            .collect();
        let containers = self.d.cri_statuses(&recs).await?;
        Ok(Response::new(cri::PodSandboxStatusResponse {
            status: Some(pod::to_cri_status(&p)),
            info,
            containers_statuses: containers,
            timestamp: crate::container::create::now_ns(),
        }))
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let items = self.list_pods_inner(req.into_inner().filter).await?;
        Ok(Response::new(cri::ListPodSandboxResponse { items }))
    }

    type StreamPodSandboxesStream = BoxStream<cri::StreamPodSandboxesResponse>;

    async fn stream_pod_sandboxes(
        &self,
        req: Request<cri::StreamPodSandboxesRequest>,
    ) -> Result<Response<Self::StreamPodSandboxesStream>, Status> {
        let items = self.list_pods_inner(req.into_inner().filter).await?;
        Ok(Response::new(batches(items, |pod_sandboxes| {
            cri::StreamPodSandboxesResponse { pod_sandboxes }
        })))
    }

    async fn create_container(
        &self,
        req: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        let req = req.into_inner();
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("container config is missing"))?;
        crate::validate::container(&config)?;
        let pod = req.pod_sandbox_id.clone();
        let id = self
            .d
            .create_container(&req.pod_sandbox_id, config)
            .await
            .inspect_err(|e| tracing::warn!(pod = %pod, error = %e, "CreateContainer failed"))?;
        Ok(Response::new(cri::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        req: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        let id = req.into_inner().container_id;
        self.d.start_container(&id).await.inspect_err(
            |e| tracing::warn!(container = %id, error = %e, "StartContainer failed"),
        )?;
        Ok(Response::new(cri::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        req: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        let req = req.into_inner();
        self.d
            .stop_container(&req.container_id, req.timeout)
            .await?;
        Ok(Response::new(cri::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        req: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        self.d
            .remove_container(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(cri::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        req: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let containers = self.list_containers_inner(req.into_inner().filter).await?;
        Ok(Response::new(cri::ListContainersResponse { containers }))
    }

    type StreamContainersStream = BoxStream<cri::StreamContainersResponse>;

    async fn stream_containers(
        &self,
        req: Request<cri::StreamContainersRequest>,
    ) -> Result<Response<Self::StreamContainersStream>, Status> {
        let items = self.list_containers_inner(req.into_inner().filter).await?;
        Ok(Response::new(batches(items, |containers| {
            cri::StreamContainersResponse { containers }
        })))
    }

    async fn container_status(
        &self,
        req: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        let req = req.into_inner();
        let rec = self.d.store.find(&req.container_id).await?;
        let rec = self.d.refreshed(rec).await?;
        let mut info = std::collections::HashMap::new();
        if req.verbose {
            // The record, plus the live pid (what `crictl inspect` / `criusctl debug` show).
            if let Ok(mut v) = serde_json::to_value(&rec) {
                if rec.phase == crate::container::record::Phase::Running {
                    if let Some(pid) = self.d.task_pid(&rec.id).await {
                        v["pid"] = serde_json::json!(pid);
                    }
                }
                info.insert("info".to_string(), v.to_string());
            }
        }
        Ok(Response::new(cri::ContainerStatusResponse {
            status: self.d.cri_statuses(std::slice::from_ref(&rec)).await?.pop(),
            info,
        }))
    }

    async fn update_container_resources(
        &self,
        req: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
        let req = req.into_inner();
        let linux = req
            .linux
            .ok_or_else(|| Status::invalid_argument("linux resources are missing"))?;
        crate::validate::resources(&linux)?;
        self.d.update_resources(&req.container_id, &linux).await?;
        Ok(Response::new(cri::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        req: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        self.d.reopen_log(&req.into_inner().container_id).await?;
        Ok(Response::new(cri::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(
        &self,
        req: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        let req = req.into_inner();
        crate::validate::command("ExecSync", &req.cmd)?;
        let out = self
            .d
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
        let s = self.streaming("Exec")?;
        let mut req = req.into_inner();
        crate::validate::command("Exec", &req.cmd)?;
        req.container_id = self
            .d
            .streamable_container("Exec", &req.container_id)
            .await?;
        s.exec(req).await.map(Response::new)
    }

    async fn attach(
        &self,
        req: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        let s = self.streaming("Attach")?;
        let mut req = req.into_inner();
        req.container_id = self
            .d
            .streamable_container("Attach", &req.container_id)
            .await?;
        s.attach(req).await.map(Response::new)
    }

    async fn port_forward(
        &self,
        req: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        let s = self.streaming("PortForward")?;
        let mut req = req.into_inner();
        req.pod_sandbox_id = self
            .d
            .streamable_pod("PortForward", &req.pod_sandbox_id)
            .await?;
        s.port_forward(req).await.map(Response::new)
    }

    async fn container_stats(
        &self,
        req: Request<cri::ContainerStatsRequest>,
    ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
        let rec = self.d.store.find(&req.into_inner().container_id).await?;
        Ok(Response::new(cri::ContainerStatsResponse {
            stats: Some(self.d.container_stats(&rec).await),
        }))
    }

    async fn list_container_stats(
        &self,
        req: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        let stats = self.container_stats_inner(req.into_inner().filter).await?;
        Ok(Response::new(cri::ListContainerStatsResponse { stats }))
    }

    type StreamContainerStatsStream = BoxStream<cri::StreamContainerStatsResponse>;

    async fn stream_container_stats(
        &self,
        req: Request<cri::StreamContainerStatsRequest>,
    ) -> Result<Response<Self::StreamContainerStatsStream>, Status> {
        let items = self.container_stats_inner(req.into_inner().filter).await?;
        Ok(Response::new(batches(items, |container_stats| {
            cri::StreamContainerStatsResponse { container_stats }
        })))
    }

    async fn pod_sandbox_stats(
        &self,
        req: Request<cri::PodSandboxStatsRequest>,
    ) -> Result<Response<cri::PodSandboxStatsResponse>, Status> {
        let p = self.d.find_pod(&req.into_inner().pod_sandbox_id).await?;
        let stats = self
            .pod_stats_inner(Some(cri::PodSandboxStatsFilter {
                id: p.id.clone(),
                ..Default::default()
            }))
            .await?
            .into_iter()
            .next();
        if stats.is_none() {
            return Err(Status::failed_precondition(format!(
                "pod sandbox {} is not ready",
                p.id
            )));
        }
        Ok(Response::new(cri::PodSandboxStatsResponse { stats }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        req: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        let stats = self.pod_stats_inner(req.into_inner().filter).await?;
        Ok(Response::new(cri::ListPodSandboxStatsResponse { stats }))
    }

    type StreamPodSandboxStatsStream = BoxStream<cri::StreamPodSandboxStatsResponse>;

    async fn stream_pod_sandbox_stats(
        &self,
        req: Request<cri::StreamPodSandboxStatsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxStatsStream>, Status> {
        let items = self.pod_stats_inner(req.into_inner().filter).await?;
        Ok(Response::new(batches(items, |pod_sandbox_stats| {
            cri::StreamPodSandboxStatsResponse { pod_sandbox_stats }
        })))
    }

    async fn update_runtime_config(
        &self,
        req: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        let cidr = req
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        if !cidr.is_empty() {
            self.d
                .sandboxer
                .update_pod_cidr(&cidr)
                .map_err(Error::from)?;
            tracing::info!(pod_cidr = %cidr, "UpdateRuntimeConfig");
        }
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    async fn status(
        &self,
        req: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        // RuntimeReady means containerd answers.
        let (rt_ok, rt_msg) = match self
            .d
            .ctrd
            .version()
            .version(crius_proto::tonic::Request::new(()))
            .await
        {
            Ok(v) => (true, format!("containerd {}", v.into_inner().version)),
            Err(s) => (false, format!("containerd: {}", s.message())),
        };
        let net = self.d.sandboxer.network_status();
        let mut info = std::collections::HashMap::new();
        if req.into_inner().verbose {
            info.insert(
                "config".to_string(),
                serde_json::to_string(&self.d.cfg).unwrap_or_default(),
            );
        }
        Ok(Response::new(cri::StatusResponse {
            status: Some(cri::RuntimeStatus {
                conditions: vec![
                    cri::RuntimeCondition {
                        r#type: "RuntimeReady".into(),
                        status: rt_ok,
                        reason: if rt_ok {
                            String::new()
                        } else {
                            "ContainerdUnavailable".into()
                        },
                        message: rt_msg,
                    },
                    cri::RuntimeCondition {
                        r#type: "NetworkReady".into(),
                        status: net.ready,
                        reason: net.reason,
                        message: net.message,
                    },
                ],
            }),
            info,
            runtime_handlers: self
                .d
                .cfg
                .runtime_handlers
                .keys()
                .map(|name| cri::RuntimeHandler {
                    name: name.clone(),
                    features: Some(cri::RuntimeHandlerFeatures {
                        recursive_read_only_mounts: self.d.runc.recursive_read_only,
                        user_namespaces: false,
                    }),
                })
                .collect(),
            features: Some(cri::RuntimeFeatures {
                // Strict is honoured, and ContainerStatus carries the effective user.
                supplemental_groups_policy: true,
                user_namespaces_host_network: false,
            }),
        }))
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
        let rx = self.d.events.subscribe();
        let stop = self.d.shutdown.clone();
        let s = futures::stream::unfold((rx, stop), |(mut rx, stop)| async move {
            loop {
                let got = tokio::select! {
                    _ = stop.cancelled() => return None,
                    got = rx.recv() => got,
                };
                match got {
                    Ok(ev) => return Some((Ok(ev), (rx, stop))),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "container events receiver lagged");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Response::new(Box::pin(s)))
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
        let pod_metrics = self.d.pod_sandbox_metrics().await?;
        Ok(Response::new(cri::ListPodSandboxMetricsResponse {
            pod_metrics,
        }))
    }

    type StreamPodSandboxMetricsStream = BoxStream<cri::StreamPodSandboxMetricsResponse>;

    async fn stream_pod_sandbox_metrics(
        &self,
        _req: Request<cri::StreamPodSandboxMetricsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxMetricsStream>, Status> {
        let items = self.d.pod_sandbox_metrics().await?;
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
        Ok(Response::new(cri::RuntimeConfigResponse {
            linux: Some(cri::LinuxRuntimeConfiguration {
                cgroup_driver: match self.d.cfg.cgroup_driver() {
                    CgroupDriver::Systemd => cri::CgroupDriver::Systemd,
                    CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs,
                } as i32,
            }),
        }))
    }

    async fn update_pod_sandbox_resources(
        &self,
        req: Request<cri::UpdatePodSandboxResourcesRequest>,
    ) -> Result<Response<cri::UpdatePodSandboxResourcesResponse>, Status> {
        let req = req.into_inner();
        self.d
            .update_pod_resources(
                &req.pod_sandbox_id,
                req.overhead.as_ref(),
                req.resources.as_ref(),
            )
            .await?;
        Ok(Response::new(cri::UpdatePodSandboxResourcesResponse {}))
    }
}
