//! criusctl's streaming client against containerd's CRI streaming server — kubelet's own library —
//! with real processes in runc containers, over both transports: WebSocket (v5/v4.channel.k8s.io,
//! channel framing for port-forward) and SPDY/3.1 (crius's framing, `--transport spdy`, against
//! Go's spdystream). Then the leak check.

mod criusctl_common;

use criusctl_common::{flows, setup};

#[test]
fn streaming_client_exec_attach_port_forward_websocket_and_spdy() {
    let Some(s) = setup("streaming_client_exec_attach_port_forward_websocket_and_spdy") else {
        return;
    };
    flows::streaming(&s);
    s.finish();
}
