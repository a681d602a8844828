//! The criusctl flows of `criusctl_cri.rs` and `streaming_client.rs`, against criusd (with the
//! crius shim, or `CRIUS_TEST_RUNTIME`): crictl's workflow must work the same on crius. The
//! streaming flow skips with one line while criusd serves no streaming server.

mod criusctl_common;
#[path = "criusd_common/mod.rs"]
mod criusd_common;

use crius_test::{paths, TestEnv};
use criusctl_common::{flows, on_server, Setup};
use std::time::{Duration, Instant};

fn setup(name: &str) -> Option<Setup> {
    let mut env = TestEnv::new(name)?;
    if !paths::criusctl_bin().exists() {
        eprintln!("SKIP: {name}: criusctl missing (hack/build.sh builds it)");
        return None;
    }
    let d = criusd_common::start(&mut env)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(on_server(env, d.socket.clone(), "crius", d.log.clone()))
}

#[test]
fn criusctl_criusd_pod_and_container_lifecycle() {
    let Some(s) = setup("criusctl_criusd_pod_and_container_lifecycle") else {
        return;
    };
    flows::lifecycle(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_images() {
    let Some(s) = setup("criusctl_criusd_images") else {
        return;
    };
    flows::images(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_errors() {
    let Some(s) = setup("criusctl_criusd_errors") else {
        return;
    };
    flows::errors(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_run_then_debug_pod() {
    let Some(s) = setup("criusctl_criusd_run_then_debug_pod") else {
        return;
    };
    flows::run_then_debug(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_streaming() {
    let Some(s) = setup("criusctl_criusd_streaming") else {
        return;
    };
    let probe = s.run(&["exec", "nonexistent-container", "true"]);
    if String::from_utf8_lossy(&probe.stderr).contains("Unimplemented") {
        eprintln!("SKIP: criusctl_criusd_streaming: criusd serves no streaming server yet");
        s.finish();
        return;
    }
    flows::streaming(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_events_logs_follow_update() {
    let Some(s) = setup("criusctl_criusd_events_logs_follow_update") else {
        return;
    };
    flows::events_follow_update(&s);
    s.finish();
}
