//! Status: is containerd answering (RuntimeReady), is the pod network set up
//! (NetworkReady), and what each runtime handler offers.

use std::collections::HashMap;

use crius_proto::runtime as cri;

use crate::daemon::Daemon;

pub async fn status(d: &Daemon, verbose: bool) -> cri::StatusResponse {
    let shared = &d.shared;
    // RuntimeReady means containerd answers.
    let (rt_ok, rt_msg) = match shared.ctrd.version().await {
        Ok(v) => (true, format!("containerd {v}")),
        Err(e) => (false, format!("containerd: {}", e.message())),
    };
    let net = shared.sandboxer.network_status();
    let mut info = HashMap::new();
    if verbose {
        info.insert(
            "config".to_string(),
            serde_json::to_string(&shared.cfg).unwrap_or_default(),
        );
    }
    cri::StatusResponse {
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
        runtime_handlers: shared
            .cfg
            .runtime_handlers
            .keys()
            .map(|name| cri::RuntimeHandler {
                name: name.clone(),
                features: Some(cri::RuntimeHandlerFeatures {
                    recursive_read_only_mounts: d.containers.oci_features(name).recursive_read_only,
                    user_namespaces: crate::pod::userns::supported(&shared.cfg, name).is_ok(),
                }),
            })
            .collect(),
        features: Some(cri::RuntimeFeatures {
            // Strict is honoured, and ContainerStatus carries the effective user.
            supplemental_groups_policy: true,
            user_namespaces_host_network: false,
        }),
    }
}
