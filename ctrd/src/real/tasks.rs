//! Tasks service.

use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    CloseIoRequest, CreateTaskRequest, DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest,
    GetRequest, KillRequest, ListTasksRequest, ResizePtyRequest, StartRequest, UpdateTaskRequest,
    WaitRequest,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::types::v1::{Process, Status as PbStatus};

use super::{absent_ok, err, until_shim_cleaned, Client};
use crate::error::Result;
use crate::types::*;
use crate::Tasks;

fn exec_id(exec: Option<&str>) -> String {
    exec.unwrap_or_default().to_string()
}

fn op_of(verb: &str, id: &str, exec: Option<&str>) -> String {
    match exec {
        Some(e) => format!("{verb} {id}/{e}"),
        None => format!("{verb} {id}"),
    }
}

pub(crate) fn status_of(s: i32) -> TaskStatus {
    match PbStatus::try_from(s) {
        Ok(PbStatus::Created) => TaskStatus::Created,
        Ok(PbStatus::Running) => TaskStatus::Running,
        Ok(PbStatus::Stopped) => TaskStatus::Stopped,
        Ok(PbStatus::Paused) => TaskStatus::Paused,
        Ok(PbStatus::Pausing) => TaskStatus::Pausing,
        _ => TaskStatus::Unknown,
    }
}

fn task_info(p: Process) -> TaskInfo {
    let status = status_of(p.status);
    TaskInfo {
        exit: (status == TaskStatus::Stopped).then(|| Exit {
            code: p.exit_status,
            at_ns: ts_ns(p.exited_at.as_ref()),
        }),
        id: p.id,
        pid: p.pid,
        status,
    }
}

fn create_request(t: NewTask) -> CreateTaskRequest {
    CreateTaskRequest {
        container_id: t.container_id,
        rootfs: t.rootfs,
        stdin: t.io.stdin,
        stdout: t.io.stdout,
        stderr: t.io.stderr,
        terminal: t.io.terminal,
        ..Default::default()
    }
}

fn exec_request(e: NewExec) -> ExecProcessRequest {
    ExecProcessRequest {
        container_id: e.container_id,
        stdin: e.io.stdin,
        stdout: e.io.stdout,
        stderr: e.io.stderr,
        terminal: e.io.terminal,
        spec: Some(prost_types::Any {
            type_url: PROCESS_TYPE_URL.to_string(),
            value: e.process,
        }),
        exec_id: e.exec_id,
    }
}

impl Client {
    fn tasks_client(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }
}

#[async_trait::async_trait]
impl Tasks for Client {
    async fn create_task(&self, t: NewTask) -> Result<u32> {
        let op = format!("task create {}", t.container_id);
        let r = self
            .tasks_client()
            .create(self.req(create_request(t)))
            .await
            .map_err(err(op))?;
        Ok(r.into_inner().pid)
    }

    async fn start(&self, id: &str, exec: Option<&str>) -> Result<u32> {
        let r = self
            .tasks_client()
            .start(self.req(StartRequest {
                container_id: id.to_string(),
                exec_id: exec_id(exec),
            }))
            .await
            .map_err(err(op_of("task start", id, exec)))?;
        Ok(r.into_inner().pid)
    }

    async fn task(&self, id: &str) -> Result<Option<TaskInfo>> {
        let r = self
            .tasks_client()
            .get(self.req(GetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await
            .map_err(err(format!("task get {id}")));
        Ok(absent_ok(r)?.map(|r| {
            let mut t = task_info(r.into_inner().process.unwrap_or_default());
            t.id = id.to_string();
            t
        }))
    }

    async fn tasks(&self) -> Result<Vec<TaskInfo>> {
        let r = self
            .tasks_client()
            .list(self.req(ListTasksRequest {
                filter: String::new(),
            }))
            .await
            .map_err(err("task list"))?;
        Ok(r.into_inner().tasks.into_iter().map(task_info).collect())
    }

    async fn kill(&self, id: &str, exec: Option<&str>, signal: u32, all: bool) -> Result<()> {
        let r = until_shim_cleaned(|| async {
            self.tasks_client()
                .kill(self.req(KillRequest {
                    container_id: id.to_string(),
                    exec_id: exec_id(exec),
                    signal,
                    all,
                }))
                .await
                .map_err(err(op_of("task kill", id, exec)))
        })
        .await;
        match r {
            Ok(_) => Ok(()),
            // Gone, or "process already finished": waiting reports how it ended.
            Err(e)
                if e.is_not_found()
                    || e.code() == containerd_client::tonic::Code::FailedPrecondition =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn wait(&self, id: &str, exec: Option<&str>) -> Result<Exit> {
        let r = self
            .tasks_client()
            .wait(self.req(WaitRequest {
                container_id: id.to_string(),
                exec_id: exec_id(exec),
            }))
            .await
            .map_err(err(op_of("task wait", id, exec)))?
            .into_inner();
        Ok(Exit {
            code: r.exit_status,
            at_ns: ts_ns(r.exited_at.as_ref()),
        })
    }

    async fn delete_task(&self, id: &str) -> Result<Option<Exit>> {
        let r = until_shim_cleaned(|| async {
            self.tasks_client()
                .delete(self.req(DeleteTaskRequest {
                    container_id: id.to_string(),
                }))
                .await
                .map_err(err(format!("task delete {id}")))
        })
        .await;
        Ok(absent_ok(r)?.map(|r| {
            let r = r.into_inner();
            Exit {
                code: r.exit_status,
                at_ns: ts_ns(r.exited_at.as_ref()),
            }
        }))
    }

    async fn exec(&self, e: NewExec) -> Result<()> {
        let op = format!("exec {} in {}", e.exec_id, e.container_id);
        self.tasks_client()
            .exec(self.req(exec_request(e)))
            .await
            .map_err(err(op))?;
        Ok(())
    }

    async fn delete_process(&self, id: &str, exec: &str) -> Result<()> {
        let r = self
            .tasks_client()
            .delete_process(self.req(DeleteProcessRequest {
                container_id: id.to_string(),
                exec_id: exec.to_string(),
            }))
            .await
            .map_err(err(op_of("process delete", id, Some(exec))));
        absent_ok(r).map(|_| ())
    }

    async fn close_stdin(&self, id: &str, exec: Option<&str>) -> Result<()> {
        self.tasks_client()
            .close_io(self.req(CloseIoRequest {
                container_id: id.to_string(),
                exec_id: exec_id(exec),
                stdin: true,
            }))
            .await
            .map_err(err(op_of("close stdin", id, exec)))?;
        Ok(())
    }

    async fn resize_pty(
        &self,
        id: &str,
        exec: Option<&str>,
        width: u32,
        height: u32,
    ) -> Result<()> {
        self.tasks_client()
            .resize_pty(self.req(ResizePtyRequest {
                container_id: id.to_string(),
                exec_id: exec_id(exec),
                width,
                height,
            }))
            .await
            .map_err(err(op_of("resize pty", id, exec)))?;
        Ok(())
    }

    async fn update_task_resources(&self, id: &str, resources: Vec<u8>) -> Result<()> {
        self.tasks_client()
            .update(self.req(UpdateTaskRequest {
                container_id: id.to_string(),
                resources: Some(prost_types::Any {
                    type_url: RESOURCES_TYPE_URL.into(),
                    value: resources,
                }),
                annotations: Default::default(),
            }))
            .await
            .map_err(err(format!("task update {id}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_become_task_infos() {
        let stopped = task_info(Process {
            id: "c1".into(),
            pid: 42,
            status: PbStatus::Stopped as i32,
            exit_status: 137,
            exited_at: Some(prost_types::Timestamp {
                seconds: 2,
                nanos: 5,
            }),
            ..Default::default()
        });
        assert_eq!(
            stopped.exit,
            Some(Exit {
                code: 137,
                at_ns: Some(2_000_000_005)
            })
        );
        assert!(!stopped.is_live());
        let created = task_info(Process {
            status: PbStatus::Created as i32,
            ..Default::default()
        });
        assert!(created.is_live() && created.created_only() && created.exit.is_none());
        assert_eq!(status_of(99), TaskStatus::Unknown);
    }

    #[test]
    fn task_and_exec_requests_carry_stdio() {
        let io = Stdio {
            stdin: "/run/in".into(),
            stdout: "binary:///log".into(),
            stderr: String::new(),
            terminal: true,
        };
        let r = create_request(NewTask {
            container_id: "c1".into(),
            rootfs: vec![Mount {
                r#type: "overlay".into(),
                ..Default::default()
            }],
            io: io.clone(),
        });
        assert_eq!(
            (r.stdin.as_str(), r.stdout.as_str(), r.terminal),
            ("/run/in", "binary:///log", true)
        );
        assert_eq!(r.rootfs.len(), 1);
        let e = exec_request(NewExec {
            container_id: "c1".into(),
            exec_id: "exec-1".into(),
            process: b"{\"args\":[\"ls\"]}".to_vec(),
            io,
        });
        assert_eq!(e.exec_id, "exec-1");
        assert_eq!(e.spec.unwrap().type_url, PROCESS_TYPE_URL);
        assert_eq!(
            op_of("task kill", "c1", Some("exec-1")),
            "task kill c1/exec-1"
        );
    }
}
