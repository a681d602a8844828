//! The stats service over an in-memory containerd (the container tests' harness).

use super::cpu_samples::pod_key;
use super::Stats;
use crate::container::record::Phase;
use crate::container::tests::{harness, record, POD};

#[tokio::test]
async fn list_passes_drop_the_cpu_samples_of_removed_containers_and_pods() {
    let h = harness().await;
    for id in ["c1", "c2"] {
        h.c.store
            .put(&record(id, &format!("name-{id}"), Phase::Exited))
            .await
            .unwrap();
    }
    let stats = Stats::new(h.c.shared.clone(), h.c.clone());
    for k in ["c1", "c2", &pod_key(POD), &pod_key("gone")] {
        stats.cpu_samples.rate(k, 1, 1);
    }
    h.c.store.remove("c2").await.unwrap();

    // A filter that matches nothing still prunes: the pass knows every container.
    let none = crius_proto::runtime::ContainerStatsFilter {
        id: "nothing".into(),
        ..Default::default()
    };
    assert!(stats.containers(Some(none)).await.unwrap().is_empty());
    // A container pass leaves the pods' samples alone.
    assert_eq!(stats.cpu_samples.keys(), ["c1", "pod:gone", "pod:pod1"]);

    stats.pods(None).await.unwrap();
    assert_eq!(stats.cpu_samples.keys(), ["c1", "pod:pod1"]);
}
