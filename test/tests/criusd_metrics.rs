//! CRI metrics through criusd as a process: ListMetricDescriptors names cAdvisor's metrics;
//! ListPodSandboxMetrics / StreamPodSandboxMetrics show a pod with a busy container (CPU,
//! memory, network of the pod's netns), every series described with matching labels; a
//! stopped pod drops out; nothing is left behind.

mod criusd_common;

use std::collections::HashMap;

use crius_proto::runtime as cri;
use crius_test::cri::CriClient;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, create_and_start, eventually, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, start, stop_pod,
};

async fn pod_metrics(c: &mut CriClient) -> Vec<cri::PodSandboxMetrics> {
    c.runtime
        .list_pod_sandbox_metrics(cri::ListPodSandboxMetricsRequest {})
        .await
        .expect("ListPodSandboxMetrics")
        .into_inner()
        .pod_metrics
}

/// The value of the first series named `name` whose labels contain `label` = `value`.
fn value_of(
    ms: &[cri::Metric],
    keys: &HashMap<String, Vec<String>>,
    name: &str,
    label: (&str, &str),
) -> Option<u64> {
    ms.iter()
        .filter(|m| m.name == name)
        .find(|m| {
            let k = &keys[name];
            let i = k.iter().position(|x| x == label.0);
            i.is_some_and(|i| m.label_values[i] == label.1)
        })
        .and_then(|m| m.value.map(|v| v.value))
}

#[test]
fn criusd_metrics_pod_with_busy_container() {
    let mut env = env_or_skip!("criusd_metrics_pod_with_busy_container");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;

        let descs = c
            .runtime
            .list_metric_descriptors(cri::ListMetricDescriptorsRequest {})
            .await
            .expect("ListMetricDescriptors")
            .into_inner()
            .descriptors;
        let keys: HashMap<String, Vec<String>> = descs
            .iter()
            .map(|d| (d.name.clone(), d.label_keys.clone()))
            .collect();
        for n in [
            "container_cpu_usage_seconds_total",
            "container_cpu_user_seconds_total",
            "container_cpu_system_seconds_total",
            "container_memory_usage_bytes",
            "container_memory_working_set_bytes",
            "container_memory_rss",
            "container_memory_cache",
            "container_spec_memory_limit_bytes",
            "container_network_receive_bytes_total",
            "container_network_transmit_bytes_total",
            "container_network_receive_packets_total",
            "container_network_transmit_packets_total",
            "container_last_seen",
            "container_start_time_seconds",
        ] {
            assert!(keys.contains_key(n), "{n} not described: {descs:?}");
        }

        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "metrics", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let busy = container_config(
            "busy",
            registry::BUSYBOX,
            &["sh", "-c", "while :; do :; done"],
        );
        let ctr = create_and_start(&mut c, &d, &pod, busy, &pcfg, "busy").await;

        // CRI values are integers: wait for the first whole CPU second.
        let pm = eventually(30, || {
            let mut c = c.clone();
            let (pod, ctr, keys) = (&pod, &ctr, &keys);
            async move {
                let all = pod_metrics(&mut c).await;
                let p = all.into_iter().find(|p| &p.pod_sandbox_id == pod)?;
                let cm = p
                    .container_metrics
                    .iter()
                    .find(|m| &m.container_id == ctr)?;
                let cpu = value_of(
                    &cm.metrics,
                    keys,
                    "container_cpu_usage_seconds_total",
                    ("cpu", "total"),
                )?;
                (cpu >= 1).then_some(p)
            }
        })
        .await
        .unwrap_or_else(|| panic!("no CPU second for {ctr}\n{}", d.log_tail()));

        // Every series is described and has one value per label key.
        let all: Vec<&cri::Metric> = pm
            .metrics
            .iter()
            .chain(pm.container_metrics.iter().flat_map(|c| c.metrics.iter()))
            .collect();
        for m in &all {
            let k = keys
                .get(&m.name)
                .unwrap_or_else(|| panic!("{} not described", m.name));
            assert_eq!(m.label_values.len(), k.len(), "{m:?} vs {k:?}");
        }

        assert_eq!(pm.container_metrics.len(), 1, "{:?}", pm.container_metrics);
        let cm = &pm.container_metrics[0].metrics;
        let by_ctr = ("container", "busy");
        let ws = value_of(cm, &keys, "container_memory_working_set_bytes", by_ctr);
        assert!(ws.unwrap_or(0) > 0, "working set {ws:?}");
        let start_s = value_of(cm, &keys, "container_start_time_seconds", by_ctr);
        assert!(start_s.unwrap_or(0) > 1_600_000_000, "start {start_s:?}");
        assert!(value_of(cm, &keys, "container_last_seen", ("name", &ctr)).is_some());
        assert!(value_of(cm, &keys, "container_cpu_user_seconds_total", by_ctr).is_some());
        // Labels as kubelet's cAdvisor endpoint has them.
        assert!(value_of(
            cm,
            &keys,
            "container_memory_usage_bytes",
            ("pod", "metrics")
        )
        .is_some());
        assert!(value_of(
            cm,
            &keys,
            "container_memory_usage_bytes",
            ("namespace", "default")
        )
        .is_some());
        let types: HashMap<&str, i32> = cm
            .iter()
            .map(|m| (m.name.as_str(), m.metric_type))
            .collect();
        assert_eq!(
            types["container_cpu_usage_seconds_total"],
            cri::MetricType::Counter as i32
        );
        assert_eq!(
            types["container_memory_working_set_bytes"],
            cri::MetricType::Gauge as i32
        );

        // The pod's network, on its pause ("POD"), per interface.
        for n in [
            "container_network_receive_bytes_total",
            "container_network_transmit_bytes_total",
            "container_network_receive_packets_total",
            "container_network_transmit_packets_total",
        ] {
            assert!(
                value_of(&pm.metrics, &keys, n, ("interface", "eth0")).is_some(),
                "{n} missing: {:?}",
                pm.metrics
            );
        }
        // The pod cgroup's own figures (container="").
        assert!(value_of(
            &pm.metrics,
            &keys,
            "container_memory_usage_bytes",
            ("container", "")
        )
        .is_some());

        // The streaming variant answers the same pods.
        let mut stream = c
            .runtime
            .stream_pod_sandbox_metrics(cri::StreamPodSandboxMetricsRequest {})
            .await
            .expect("StreamPodSandboxMetrics")
            .into_inner();
        let mut streamed = Vec::new();
        while let Some(r) = stream.message().await.expect("stream item") {
            streamed.extend(r.pod_sandbox_metrics.into_iter().map(|p| p.pod_sandbox_id));
        }
        assert_eq!(streamed, vec![pod.clone()]);

        stop_pod(&mut c, &pod).await.expect("stop pod");
        let left = pod_metrics(&mut c).await;
        assert!(left.iter().all(|p| p.pod_sandbox_id != pod), "{left:?}");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        assert!(pod_metrics(&mut c).await.is_empty());
    });
    finish(env, &d);
}
