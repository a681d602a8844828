//! criusctl against containerd's own CRI plugin (runc): the crictl workflow end to end —
//! runp → create → start → logs → ps/pods/inspect → exec -s → stop/rm/rmp, pull/images/rmi,
//! `run` + `debug pod`, one-line gRPC errors — then the leak check. The flows live in
//! `criusctl_common/flows.rs`; `criusctl_criusd.rs` runs them against criusd.

mod criusctl_common;

use criusctl_common::{flows, setup};

#[test]
fn criusctl_pod_and_container_lifecycle() {
    let Some(s) = setup("criusctl_pod_and_container_lifecycle") else {
        return;
    };
    flows::lifecycle(&s);
    s.finish();
}

#[test]
fn criusctl_images_pull_list_inspect_remove() {
    let Some(s) = setup("criusctl_images_pull_list_inspect_remove") else {
        return;
    };
    flows::images(&s);
    s.finish();
}

#[test]
fn criusctl_errors_are_one_line_with_the_grpc_code() {
    let Some(s) = setup("criusctl_errors_are_one_line_with_the_grpc_code") else {
        return;
    };
    flows::errors(&s);
    s.finish();
}

#[test]
fn criusctl_run_then_debug_pod() {
    let Some(s) = setup("criusctl_run_then_debug_pod") else {
        return;
    };
    flows::run_then_debug(&s);
    s.finish();
}

#[test]
fn criusctl_events_logs_follow_update() {
    let Some(s) = setup("criusctl_events_logs_follow_update") else {
        return;
    };
    flows::events_follow_update(&s);
    s.finish();
}
