//! One process of a container (its init or an exec) as the shim tracks it.

use containerd_shim::{
    asynchronous::io::{IoTasks, Pty, Stdio},
    protos::types::task::Status,
};
use tokio::sync::watch;

use crate::reaper::Exit;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Paused,
    Stopped,
}

impl State {
    pub fn status(self) -> Status {
        match self {
            State::Created => Status::CREATED,
            State::Running => Status::RUNNING,
            State::Paused => Status::PAUSED,
            State::Stopped => Status::STOPPED,
        }
    }
}

pub struct Process {
    pub pid: i32,
    pub state: State,
    pub stdio: Stdio,
    pub io: IoTasks,
    pub pty: Option<Pty>,
    pub exit: Option<Exit>,
    pub exited: watch::Sender<Option<Exit>>,
    /// An exec's OCI process spec (JSON), kept from Exec until Start.
    pub spec: Option<Vec<u8>>,
    /// The `binary://` log driver, finished when the process is deleted.
    pub logger: Option<crate::logbinary::Logger>,
    /// The non-terminal stdin copy (dropping it ends the process's stdin).
    pub stdin: Option<crate::stdio::StdinCopy>,
    /// CloseIO came (possibly before Start, when there was no copy yet).
    pub stdin_closed: bool,
}

impl Process {
    pub fn new(stdio: Stdio) -> Self {
        Process {
            pid: 0,
            state: State::Created,
            stdio,
            io: IoTasks::default(),
            pty: None,
            exit: None,
            exited: watch::channel(None).0,
            spec: None,
            logger: None,
            stdin: None,
            stdin_closed: false,
        }
    }

    pub fn set_exited(&mut self, exit: Exit) {
        self.state = State::Stopped;
        self.exit = Some(exit);
        self.exited.send_replace(Some(exit));
    }

    /// Resolves once the process has exited.
    pub fn wait(&self) -> impl std::future::Future<Output = Option<Exit>> {
        let mut rx = self.exited.subscribe();
        async move {
            let got = rx.wait_for(|e| e.is_some()).await.ok()?;
            *got
        }
    }
}
