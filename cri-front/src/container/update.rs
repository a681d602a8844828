//! UpdateContainerResources: new cgroup limits through containerd's Tasks.Update
//! (a running task) or the stored spec (a created container).

use crius_proto::runtime as cri;
use serde_json::{json, Value};

use super::Containers;
use crate::container::record::Phase;
use crate::error::{Error, Result};

/// OCI `linux.resources` for CRI's resources (zero values left out).
pub fn resources_json(r: &cri::LinuxContainerResources) -> Result<Value> {
    if r.cpu_shares < 0 || r.memory_limit_in_bytes < 0 || r.cpu_period < 0 || r.cpu_quota < -1 {
        return Err(Error::InvalidArgument("negative resource values".into()));
    }
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota));
    }
    if r.cpu_period > 0 {
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    let mut v = json!({});
    if !cpu.is_empty() {
        v["cpu"] = Value::Object(cpu);
    }
    let mut memory = serde_json::Map::new();
    if r.memory_limit_in_bytes > 0 {
        memory.insert("limit".into(), json!(r.memory_limit_in_bytes));
    }
    // Memory + swap, as in OCI (runc turns it into v2's memory.swap.max); -1 is unlimited.
    if r.memory_swap_limit_in_bytes != 0 {
        memory.insert("swap".into(), json!(r.memory_swap_limit_in_bytes));
    }
    if !memory.is_empty() {
        v["memory"] = Value::Object(memory);
    }
    if !r.hugepage_limits.is_empty() {
        v["hugepageLimits"] = r
            .hugepage_limits
            .iter()
            .map(|h| json!({"pageSize": h.page_size, "limit": h.limit}))
            .collect();
    }
    if !r.unified.is_empty() {
        v["unified"] = json!(r.unified);
    }
    Ok(v)
}

impl Containers {
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn update_resources(&self, id: &str, r: &cri::LinuxContainerResources) -> Result<()> {
        // Under the container's guard: a Start creating the task from the spec cannot
        // miss an update of it.
        let (_guard, rec) = self.guarded(id).await?;
        let rec = match rec.phase {
            Phase::Created => self.promote_started(rec).await,
            _ => rec,
        };
        let rec = self.refreshed(rec).await?;
        let res = resources_json(r)?;
        match rec.phase {
            Phase::Running => {
                let value = serde_json::to_vec(&res)
                    .map_err(|e| Error::Internal(format!("encode resources: {e}")))?;
                self.shared
                    .ctrd
                    .update_task_resources(&rec.id, value)
                    .await?;
            }
            Phase::Created => {
                let c = self.shared.ctrd.container(&rec.id).await?;
                let mut spec: Value = serde_json::from_slice(&c.spec)
                    .map_err(|e| Error::Internal(format!("container {} spec: {e}", rec.id)))?;
                // Merge so the device rules already in the spec stay.
                if let (Some(dst), Some(src)) = (
                    spec.pointer_mut("/linux/resources")
                        .and_then(Value::as_object_mut),
                    res.as_object(),
                ) {
                    for (k, v) in src {
                        dst.insert(k.clone(), v.clone());
                    }
                }
                let spec = serde_json::to_vec(&spec)
                    .map_err(|e| Error::Internal(format!("encode spec: {e}")))?;
                self.shared
                    .ctrd
                    .update_container_spec(&rec.id, spec)
                    .await?;
            }
            Phase::Exited => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} has exited",
                    rec.id
                )))
            }
        }
        let mut merged = rec.resources.clone().unwrap_or_default();
        let new = crate::container::record::ResourcesRecord::from_cri(r);
        // Zero means "unchanged" in an update.
        if new.cpu_period != 0 {
            merged.cpu_period = new.cpu_period;
        }
        if new.cpu_quota != 0 {
            merged.cpu_quota = new.cpu_quota;
        }
        if new.cpu_shares != 0 {
            merged.cpu_shares = new.cpu_shares;
        }
        if new.memory_limit_in_bytes != 0 {
            merged.memory_limit_in_bytes = new.memory_limit_in_bytes;
        }
        if !new.cpuset_cpus.is_empty() {
            merged.cpuset_cpus = new.cpuset_cpus;
        }
        if !new.cpuset_mems.is_empty() {
            merged.cpuset_mems = new.cpuset_mems;
        }
        self.store
            .update(&rec.id, |x| {
                x.resources = Some(merged.clone());
                true
            })
            .await?;
        tracing::info!(container = %rec.id, resources = %res, "UpdateContainerResources");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_mapping() {
        let r = cri::LinuxContainerResources {
            cpu_shares: 512,
            memory_limit_in_bytes: 1 << 26,
            ..Default::default()
        };
        let v = resources_json(&r).expect("json");
        assert_eq!(v["cpu"]["shares"], 512);
        assert_eq!(v["memory"]["limit"], 1 << 26);
        let bad = cri::LinuxContainerResources {
            memory_limit_in_bytes: -5,
            ..Default::default()
        };
        assert!(resources_json(&bad).is_err());
    }
}
