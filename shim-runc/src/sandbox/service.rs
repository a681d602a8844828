//! `containerd.runtime.sandbox.v1.Sandbox` over ttrpc: containerd's requests onto [`Pod`].
//! Errors are ttrpc statuses containerd's `shim` sandbox controller understands (NOT_FOUND for
//! an unknown sandbox, which its Stop and the CRI's Remove take as done), each logged.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use containerd_shim::{
    protos::{protobuf::MessageField, ttrpc::r#async::TtrpcContext},
    ExitSignal,
};
use containerd_shim_protos::{sandbox_api as api, sandbox_async::Sandbox};

use super::{CreateArgs, Pod};
use crate::{error::Result, events::timestamp, service::Service};

type TtrpcResult<T> = containerd_shim::protos::ttrpc::Result<T>;

pub struct SandboxService {
    pod: Arc<Pod>,
    tasks: Arc<Service>,
    exit: Arc<ExitSignal>,
}

impl SandboxService {
    pub fn new(pod: Arc<Pod>, tasks: Arc<Service>, exit: Arc<ExitSignal>) -> Self {
        SandboxService { pod, tasks, exit }
    }
}

fn answer<T>(op: &str, id: &str, r: Result<T>) -> TtrpcResult<T> {
    r.map_err(|e| {
        tracing::warn!(sandbox_id = id, op, error = %e, "sandbox request failed");
        e.into()
    })
}

/// containerd's GOARCH names.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[async_trait]
impl Sandbox for SandboxService {
    async fn create_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateSandboxRequest,
    ) -> TtrpcResult<api::CreateSandboxResponse> {
        let args = CreateArgs {
            id: &req.sandbox_id,
            bundle: &req.bundle_path,
            options: req.options.as_ref(),
            netns: &req.netns_path,
        };
        answer("create", &req.sandbox_id, self.pod.create(args).await)?;
        Ok(api::CreateSandboxResponse::default())
    }

    async fn start_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartSandboxRequest,
    ) -> TtrpcResult<api::StartSandboxResponse> {
        let (pid, at) = answer(
            "start",
            &req.sandbox_id,
            self.pod.start(&req.sandbox_id).await,
        )?;
        Ok(api::StartSandboxResponse {
            pid,
            created_at: MessageField::some(timestamp(at)),
            ..Default::default()
        })
    }

    async fn platform(
        &self,
        _ctx: &TtrpcContext,
        req: api::PlatformRequest,
    ) -> TtrpcResult<api::PlatformResponse> {
        answer(
            "platform",
            &req.sandbox_id,
            self.pod.check(&req.sandbox_id).await,
        )?;
        let mut resp = api::PlatformResponse::default();
        let p = resp.platform.mut_or_insert_default();
        p.os = std::env::consts::OS.into();
        p.architecture = goarch().into();
        Ok(resp)
    }

    async fn stop_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::StopSandboxRequest,
    ) -> TtrpcResult<api::StopSandboxResponse> {
        let timeout = Duration::from_secs(req.timeout_secs.into());
        answer(
            "stop",
            &req.sandbox_id,
            self.pod.stop(&req.sandbox_id, timeout).await,
        )?;
        Ok(api::StopSandboxResponse::default())
    }

    async fn wait_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitSandboxRequest,
    ) -> TtrpcResult<api::WaitSandboxResponse> {
        let exit = answer(
            "wait",
            &req.sandbox_id,
            self.pod.wait(&req.sandbox_id).await,
        )?;
        Ok(api::WaitSandboxResponse {
            exit_status: exit.status as u32,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        })
    }

    async fn sandbox_status(
        &self,
        _ctx: &TtrpcContext,
        req: api::SandboxStatusRequest,
    ) -> TtrpcResult<api::SandboxStatusResponse> {
        let st = answer(
            "status",
            &req.sandbox_id,
            self.pod.status(&req.sandbox_id, req.verbose).await,
        )?;
        Ok(api::SandboxStatusResponse {
            sandbox_id: req.sandbox_id.clone(),
            pid: st.pid,
            state: if st.ready {
                "SANDBOX_READY"
            } else {
                "SANDBOX_NOTREADY"
            }
            .into(),
            info: st.info.into_iter().collect(),
            created_at: st.created_at.map(timestamp).into(),
            exited_at: st.exit.map(|e| timestamp(e.at)).into(),
            ..Default::default()
        })
    }

    async fn ping_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::PingRequest,
    ) -> TtrpcResult<api::PingResponse> {
        answer(
            "ping",
            &req.sandbox_id,
            self.pod.check(&req.sandbox_id).await,
        )?;
        Ok(api::PingResponse::default())
    }

    async fn shutdown_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::ShutdownSandboxRequest,
    ) -> TtrpcResult<api::ShutdownSandboxResponse> {
        let res = self.pod.shutdown(&req.sandbox_id).await;
        // The pod's tasks keep the shim until containerd deletes them. A shim whose
        // CreateSandbox failed gets this too (containerd's cleanup) and has nothing to keep.
        if self.tasks.is_idle().await {
            tracing::info!(sandbox_id = %req.sandbox_id, "no task or sandbox left, shutting down");
            self.exit.signal();
        }
        answer("shutdown", &req.sandbox_id, res)?;
        Ok(api::ShutdownSandboxResponse::default())
    }

    async fn sandbox_metrics(
        &self,
        _ctx: &TtrpcContext,
        req: api::SandboxMetricsRequest,
    ) -> TtrpcResult<api::SandboxMetricsResponse> {
        let data = answer(
            "metrics",
            &req.sandbox_id,
            self.pod.metrics(&req.sandbox_id).await,
        )?;
        let mut resp = api::SandboxMetricsResponse::default();
        let m = resp.metrics.mut_or_insert_default();
        m.id = req.sandbox_id.clone();
        m.timestamp = MessageField::some(timestamp(time::OffsetDateTime::now_utc()));
        m.data = MessageField::some(data);
        Ok(resp)
    }
}
