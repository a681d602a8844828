//! Tasks and their processes in the fake.

use std::collections::BTreeMap;

use tokio::sync::watch;

use super::{end, exists, not_found, precondition, Fake, Proc, Task};
use crate::error::Result;
use crate::types::*;
use crate::Tasks;

const SIGKILL: u32 = 9;

fn new_proc(pid: u32, io: Stdio) -> Proc {
    Proc {
        pid,
        status: TaskStatus::Created,
        io,
        done: watch::channel(None).0,
    }
}

fn info(id: &str, p: &Proc) -> TaskInfo {
    TaskInfo {
        id: id.to_string(),
        pid: p.pid,
        status: p.status,
        exit: *p.done.borrow(),
    }
}

fn proc_mut<'a>(t: &'a mut Task, exec: Option<&str>) -> Option<&'a mut Proc> {
    match exec {
        None => Some(&mut t.init),
        Some(e) => t.execs.get_mut(e),
    }
}

fn name(id: &str, exec: Option<&str>) -> String {
    match exec {
        Some(e) => format!("{id}/{e}"),
        None => id.to_string(),
    }
}

#[async_trait::async_trait]
impl Tasks for Fake {
    async fn create_task(&self, t: NewTask) -> Result<u32> {
        let id = t.container_id.clone();
        let op = format!("task create {id}");
        let mut st = self.call("create_task", &id)?;
        if !st.containers.contains_key(&id) {
            return Err(not_found(op, &format!("container {id}")));
        }
        if st.tasks.contains_key(&id) {
            return Err(exists(op, &format!("task {id}")));
        }
        st.next_pid += 1;
        let pid = st.next_pid;
        st.tasks.insert(
            id,
            Task {
                init: new_proc(pid, t.io),
                execs: BTreeMap::new(),
                resources: None,
            },
        );
        Ok(pid)
    }

    async fn start(&self, id: &str, exec: Option<&str>) -> Result<u32> {
        let who = name(id, exec);
        let op = format!("task start {who}");
        let mut st = self.call("start", &who)?;
        let exec_code = st.exec_exit_code;
        let t = st
            .tasks
            .get_mut(id)
            .ok_or_else(|| not_found(&op, &format!("task {id}")))?;
        let p = proc_mut(t, exec).ok_or_else(|| not_found(&op, &format!("process {who}")))?;
        if p.status != TaskStatus::Created {
            return Err(precondition(
                op,
                format!("process {who} was started already"),
            ));
        }
        p.status = TaskStatus::Running;
        let pid = p.pid;
        // An exec'd process does its work at once.
        let ev = exec.and_then(|_| end(p, exec_code));
        drop(st);
        self.emit(ev, id, exec.unwrap_or(id));
        Ok(pid)
    }

    async fn task(&self, id: &str) -> Result<Option<TaskInfo>> {
        let st = self.call("task", id)?;
        Ok(st.tasks.get(id).map(|t| info(id, &t.init)))
    }

    async fn tasks(&self) -> Result<Vec<TaskInfo>> {
        let st = self.call("tasks", "")?;
        Ok(st.tasks.iter().map(|(id, t)| info(id, &t.init)).collect())
    }

    async fn kill(&self, id: &str, exec: Option<&str>, signal: u32, all: bool) -> Result<()> {
        let who = name(id, exec);
        let mut st = self.call("kill", &who)?;
        let stubborn = st.stubborn.contains(id);
        let Some(t) = st.tasks.get_mut(id) else {
            return Ok(());
        };
        let mut ended = Vec::new();
        let dies = signal == SIGKILL || !(stubborn && exec.is_none());
        if dies {
            if let Some(p) = proc_mut(t, exec) {
                ended.push((exec.unwrap_or(id).to_string(), end(p, 128 + signal)));
            }
        }
        if all && exec.is_none() {
            for (e, p) in t.execs.iter_mut() {
                ended.push((e.clone(), end(p, 128 + signal)));
            }
        }
        drop(st);
        for (who, ev) in ended {
            self.emit(ev, id, &who);
        }
        Ok(())
    }

    async fn wait(&self, id: &str, exec: Option<&str>) -> Result<Exit> {
        let who = name(id, exec);
        let op = format!("task wait {who}");
        let mut rx = {
            let mut st = self.call("wait", &who)?;
            let t = st
                .tasks
                .get_mut(id)
                .ok_or_else(|| not_found(&op, &format!("task {id}")))?;
            proc_mut(t, exec)
                .ok_or_else(|| not_found(&op, &format!("process {who}")))?
                .done
                .subscribe()
        };
        loop {
            if let Some(exit) = *rx.borrow_and_update() {
                return Ok(exit);
            }
            // The sender went with the task (deleted): as a shim gone away.
            if rx.changed().await.is_err() {
                return Err(not_found(op, &format!("process {who}")));
            }
        }
    }

    async fn delete_task(&self, id: &str) -> Result<Option<Exit>> {
        let op = format!("task delete {id}");
        let mut st = self.call("delete_task", id)?;
        let Some(t) = st.tasks.get(id) else {
            return Ok(None);
        };
        if t.init.status != TaskStatus::Stopped {
            return Err(precondition(
                op,
                format!(
                    "task {id} must be stopped before deletion: {:?}",
                    t.init.status
                ),
            ));
        }
        let exit = *t.init.done.borrow();
        st.tasks.remove(id);
        Ok(exit)
    }

    async fn exec(&self, e: NewExec) -> Result<()> {
        let (id, exec) = (e.container_id.clone(), e.exec_id.clone());
        let op = format!("exec {exec} in {id}");
        let mut st = self.call("exec", &name(&id, Some(&exec)))?;
        st.next_pid += 1;
        let pid = st.next_pid;
        let t = st
            .tasks
            .get_mut(&id)
            .ok_or_else(|| not_found(&op, &format!("task {id}")))?;
        if t.init.status != TaskStatus::Running {
            return Err(precondition(op, format!("task {id} is not running")));
        }
        if t.execs.contains_key(&exec) {
            return Err(exists(op, &format!("exec {exec}")));
        }
        t.execs.insert(exec, new_proc(pid, e.io));
        Ok(())
    }

    async fn delete_process(&self, id: &str, exec: &str) -> Result<()> {
        let op = format!("process delete {id}/{exec}");
        let mut st = self.call("delete_process", &name(id, Some(exec)))?;
        let Some(t) = st.tasks.get_mut(id) else {
            return Ok(());
        };
        match t.execs.get(exec) {
            None => Ok(()),
            Some(p) if p.status == TaskStatus::Running => Err(precondition(
                op,
                format!("process {exec} must be stopped before deletion"),
            )),
            Some(_) => {
                t.execs.remove(exec);
                Ok(())
            }
        }
    }

    async fn close_stdin(&self, id: &str, exec: Option<&str>) -> Result<()> {
        let who = name(id, exec);
        let mut st = self.call("close_stdin", &who)?;
        let t = st.tasks.get_mut(id);
        match t.and_then(|t| proc_mut(t, exec)) {
            Some(_) => Ok(()),
            None => Err(not_found(
                format!("close stdin {who}"),
                &format!("process {who}"),
            )),
        }
    }

    async fn resize_pty(&self, id: &str, exec: Option<&str>, _w: u32, _h: u32) -> Result<()> {
        let who = name(id, exec);
        let mut st = self.call("resize_pty", &who)?;
        let t = st.tasks.get_mut(id);
        match t.and_then(|t| proc_mut(t, exec)) {
            Some(_) => Ok(()),
            None => Err(not_found(
                format!("resize pty {who}"),
                &format!("process {who}"),
            )),
        }
    }

    async fn update_task_resources(&self, id: &str, resources: Vec<u8>) -> Result<()> {
        let op = format!("task update {id}");
        let mut st = self.call("update_task_resources", id)?;
        let t = st
            .tasks
            .get_mut(id)
            .ok_or_else(|| not_found(&op, &format!("task {id}")))?;
        if t.init.status == TaskStatus::Stopped {
            return Err(precondition(op, format!("task {id} has exited")));
        }
        t.resources = Some(resources);
        Ok(())
    }
}
