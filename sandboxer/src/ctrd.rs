//! The few containerd calls the sandboxer makes (containers and tasks of the
//! pause, tasks of a pod's containers), over a lazily connected channel so the
//! sandboxer starts even while containerd is still coming up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{RemoveSnapshotRequest, ViewSnapshotRequest};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, GetRequest, KillRequest, ListContainersRequest, ListTasksRequest,
    StartRequest, WaitRequest,
};
use containerd_client::services::v1::{GetImageRequest, ReadContentRequest};
use containerd_client::tonic::transport::{Channel, Endpoint, Uri};
use containerd_client::tonic::{Code, Request, Status};
use containerd_client::types::v1::Status as TaskStatus;
use containerd_client::types::Mount;

/// `Any` type URL of an OCI runtime spec, as containerd registers it.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

#[derive(Clone)]
pub struct Ctrd {
    channel: Channel,
    namespace: String,
}

/// State of a task as containerd reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskInfo {
    pub pid: u32,
    /// Created, running or paused: has a process.
    pub running: bool,
    /// Created but never started (its process waits in the runtime's init).
    pub created_only: bool,
}

impl Ctrd {
    pub fn new(address: &Path, namespace: &str) -> Result<Self, Status> {
        let path: PathBuf = address.to_path_buf();
        let channel = Endpoint::try_from("http://[::]")
            .map_err(|e| Status::internal(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Ok(Ctrd {
            channel,
            namespace: namespace.to_string(),
        })
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        if let Ok(v) = self.namespace.parse() {
            req.metadata_mut().insert("containerd-namespace", v);
        }
        req
    }

    fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }

    fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }

    /// Create the container record. `snapshot`: (image, snapshotter, key) when
    /// the rootfs is a snapshot; None when the spec names its rootfs dir.
    pub async fn create_container(
        &self,
        id: &str,
        runtime: &str,
        spec_json: Vec<u8>,
        labels: HashMap<String, String>,
        snapshot: Option<(&str, &str, &str)>,
    ) -> Result<(), Status> {
        let (image, snapshotter, snapshot_key) = snapshot.unwrap_or(("", "", ""));
        let container = Container {
            id: id.to_string(),
            labels,
            image: image.to_string(),
            snapshotter: snapshotter.to_string(),
            snapshot_key: snapshot_key.to_string(),
            runtime: Some(Runtime {
                name: runtime.to_string(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE_URL.to_string(),
                value: spec_json,
            }),
            ..Default::default()
        };
        self.containers()
            .create(self.req(CreateContainerRequest {
                container: Some(container),
            }))
            .await?;
        Ok(())
    }

    /// Create (with `rootfs` mounts, if any) and start the task; returns its pid.
    pub async fn start_task(&self, id: &str, rootfs: Vec<Mount>) -> Result<u32, Status> {
        self.tasks()
            .create(self.req(CreateTaskRequest {
                container_id: id.to_string(),
                rootfs,
                ..Default::default()
            }))
            .await?;
        let resp = self
            .tasks()
            .start(self.req(StartRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await?;
        Ok(resp.into_inner().pid)
    }

    /// None when the container has no task.
    pub async fn task(&self, id: &str) -> Result<Option<TaskInfo>, Status> {
        match self
            .tasks()
            .get(self.req(GetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().process.map(|p| TaskInfo {
                pid: p.pid,
                running: is_live(p.status),
                created_only: p.status == TaskStatus::Created as i32,
            })),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(s),
        }
    }

    /// All tasks of the namespace by container id.
    pub async fn tasks_by_id(&self) -> Result<HashMap<String, TaskInfo>, Status> {
        let resp = self
            .tasks()
            .list(self.req(ListTasksRequest {
                filter: String::new(),
            }))
            .await?;
        Ok(resp
            .into_inner()
            .tasks
            .into_iter()
            .map(|p| {
                (
                    p.id.clone(),
                    TaskInfo {
                        pid: p.pid,
                        running: is_live(p.status),
                        created_only: p.status == TaskStatus::Created as i32,
                    },
                )
            })
            .collect())
    }

    /// Signal the task (all processes with `all`). NotFound / not running is Ok.
    pub async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), Status> {
        match until_shim_cleaned(|| async {
            self.tasks()
                .kill(self.req(KillRequest {
                    container_id: id.to_string(),
                    exec_id: String::new(),
                    signal,
                    all,
                }))
                .await
        })
        .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            // containerd says "process already finished" this way.
            Err(s) if s.code() == Code::FailedPrecondition => Ok(()),
            Err(s) => Err(s),
        }
    }

    /// Wait up to `timeout` for the task to exit. Ok(true) when it did (or has no task).
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<bool, Status> {
        let mut tasks = self.tasks();
        let fut = tasks.wait(self.req(WaitRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }));
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Ok(false),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(s)) if s.code() == Code::NotFound => Ok(true),
            Ok(Err(s)) => Err(s),
        }
    }

    /// Delete the (exited) task. Idempotent.
    pub async fn delete_task(&self, id: &str) -> Result<(), Status> {
        match until_shim_cleaned(|| async {
            self.tasks()
                .delete(self.req(DeleteTaskRequest {
                    container_id: id.to_string(),
                }))
                .await
        })
        .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(s),
        }
    }

    /// Delete the container record. Idempotent.
    pub async fn delete_container(&self, id: &str) -> Result<(), Status> {
        match self
            .containers()
            .delete(self.req(DeleteContainerRequest { id: id.to_string() }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(s),
        }
    }

    /// Containers carrying label `key=value`.
    pub async fn containers_with_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<Container>, Status> {
        let filter = format!("labels.\"{key}\"=={value}");
        let resp = self
            .containers()
            .list(self.req(ListContainersRequest {
                filters: vec![filter],
            }))
            .await?;
        Ok(resp.into_inner().containers)
    }
}

impl Ctrd {
    /// The image's target descriptor (media type, digest); None if absent.
    pub async fn image_target(&self, name: &str) -> Result<Option<(String, String)>, Status> {
        match ImagesClient::new(self.channel.clone())
            .get(self.req(GetImageRequest {
                name: name.to_string(),
            }))
            .await
        {
            Ok(r) => Ok(r
                .into_inner()
                .image
                .and_then(|i| i.target)
                .map(|t| (t.media_type, t.digest))),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(s),
        }
    }

    /// A whole blob from the content store.
    pub async fn read_content(&self, digest: &str) -> Result<Vec<u8>, Status> {
        let mut stream = ContentClient::new(self.channel.clone())
            .read(self.req(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream.message().await? {
            out.extend_from_slice(&chunk.data);
        }
        Ok(out)
    }

    /// A read-only view snapshot of `parent` (an image's chain id).
    pub async fn view_snapshot(
        &self,
        snapshotter: &str,
        key: &str,
        parent: &str,
    ) -> Result<Vec<Mount>, Status> {
        let r = SnapshotsClient::new(self.channel.clone())
            .view(self.req(ViewSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
                parent: parent.to_string(),
                labels: HashMap::new(),
            }))
            .await?;
        Ok(r.into_inner().mounts)
    }

    /// Remove a snapshot. Idempotent.
    pub async fn remove_snapshot(&self, snapshotter: &str, key: &str) -> Result<(), Status> {
        match SnapshotsClient::new(self.channel.clone())
            .remove(self.req(RemoveSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(s),
        }
    }
}

fn is_live(status: i32) -> bool {
    matches!(
        TaskStatus::try_from(status),
        Ok(TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing | TaskStatus::Created)
    )
}

/// Is this error containerd being unreachable (vs. a refusal)?
pub fn is_unavailable(s: &Status) -> bool {
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded => true,
        // tonic reports a failed connect as Unknown with a transport error.
        Code::Unknown => s.message().contains("transport"),
        _ => false,
    }
}

/// A task whose shim died answers "ttrpc: closed" until containerd has noticed and cleaned up
/// after the dead shim (its `delete`, the exit event), which takes a moment; then the task is
/// gone (NotFound) or exited. Retry `call` through that window, for up to 10 s.
async fn until_shim_cleaned<T, F, Fut>(mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match call().await {
            Err(s)
                if s.code() == Code::Unknown
                    && s.message().contains("ttrpc: closed")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r => return r,
        }
    }
}
