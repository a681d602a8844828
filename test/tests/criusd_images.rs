//! criusd's ImageService against a real containerd and the local registry: pull, list,
//! status (size, user, tags/digests), remove, fs info, and the bad-input codes.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{client, finish, image_status, pull, rt, start, try_pull};

fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

/// Every image criusd lists (no filter).
async fn list_images(c: &mut crius_test::cri::CriClient) -> Vec<cri::Image> {
    c.image
        .list_images(cri::ListImagesRequest { filter: None })
        .await
        .expect("list")
        .into_inner()
        .images
}

#[test]
fn criusd_pulls_lists_and_removes_images() {
    let mut env = env_or_skip!("criusd_pulls_lists_and_removes_images");
    let Some(d) = start(&mut env) else { return };
    rt().block_on(async {
        let mut c = client(&d).await;
        let id = pull(&mut c, registry::BUSYBOX).await;
        assert!(id.starts_with("sha256:"), "{id}");
        // A second pull finds everything in place.
        assert_eq!(pull(&mut c, registry::BUSYBOX).await, id);
        let cfg_id = pull(&mut c, registry::CONFIG_TEST).await;

        let st = image_status(&mut c, registry::BUSYBOX)
            .await
            .expect("status")
            .image
            .expect("present");
        assert_eq!(st.id, id);
        assert!(st.size > 100_000, "size {}", st.size);
        assert_eq!(st.repo_tags, vec![registry::BUSYBOX.to_string()]);
        assert!(st.repo_digests[0].starts_with("127.0.0.1:5000/crius/busybox@sha256:"));
        // Pulling by that digest finds the same image.
        assert_eq!(pull(&mut c, &st.repo_digests[0]).await, id);
        // By id too.
        let by_id = image_status(&mut c, &id)
            .await
            .expect("status by id")
            .image
            .expect("present by id");
        assert_eq!(by_id.id, id);

        let cfg_resp = c
            .image
            .image_status(cri::ImageStatusRequest {
                image: spec(&cfg_id),
                verbose: true,
            })
            .await
            .expect("status")
            .into_inner();
        let info: serde_json::Value = serde_json::from_str(
            cfg_resp
                .info
                .get("info")
                .map(String::as_str)
                .unwrap_or("{}"),
        )
        .expect("verbose info");
        assert_eq!(
            info["imageSpec"]["config"]["WorkingDir"], "/home/app",
            "{info}"
        );
        let cfg_st = cfg_resp.image.expect("present");
        assert!(
            cfg_st.uid.is_some() || !cfg_st.username.is_empty(),
            "config-test sets User: {cfg_st:?}"
        );

        let list = list_images(&mut c).await;
        assert_eq!(list.len(), 2, "{list:?}");

        let fs = c
            .image
            .image_fs_info(cri::ImageFsInfoRequest {})
            .await
            .expect("fs info")
            .into_inner();
        let used = fs.image_filesystems[0]
            .used_bytes
            .as_ref()
            .map(|u| u.value)
            .unwrap_or(0);
        assert!(used > 0, "{fs:?}");
        let mp = fs.image_filesystems[0]
            .fs_id
            .as_ref()
            .map(|f| f.mountpoint.clone())
            .unwrap_or_default();
        assert!(
            mp.ends_with("io.containerd.snapshotter.v1.overlayfs")
                && std::path::Path::new(&mp).is_dir(),
            "{mp}"
        );

        // Bad input.
        for bad in ["", "UPPER/case:x", "busybox:"] {
            let e = try_pull(&mut c, bad).await.expect_err("invalid ref");
            assert_eq!(e.code(), Code::InvalidArgument, "{bad:?}: {e}");
        }
        let e = try_pull(&mut c, "127.0.0.1:1/nothing/here:latest")
            .await
            .expect_err("registry down");
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        assert!(e.message().contains("127.0.0.1:1"), "{e}");

        // Remove: by tag removes every name of the image; twice is fine.
        for _ in 0..2 {
            c.image
                .remove_image(cri::RemoveImageRequest {
                    image: spec(registry::BUSYBOX),
                })
                .await
                .expect("remove");
        }
        let gone = image_status(&mut c, &id).await.expect("status").image;
        assert!(gone.is_none(), "{gone:?}");
        c.image
            .remove_image(cri::RemoveImageRequest {
                image: spec(&cfg_id),
            })
            .await
            .expect("remove by id");
        let list = list_images(&mut c).await;
        assert!(list.is_empty(), "{list:?}");
    });
    finish(env, &d);
}

#[test]
fn criusd_pull_falls_through_mirrors_per_hosts_toml() {
    let mut env = env_or_skip!("criusd_pull_falls_through_mirrors_per_hosts_toml");
    let Some(d) = start(&mut env) else { return };
    let certs = env
        .running_containerd()
        .map(|c| c.certs_d())
        .expect("containerd");
    // A registry name that does not resolve, served by a dead mirror first, then the local registry.
    let host_dir = certs.join("registry.crius.test");
    std::fs::create_dir_all(&host_dir).expect("hosts dir");
    std::fs::write(
        host_dir.join("hosts.toml"),
        "server = \"http://127.0.0.1:1\"\n\n\
         [host.\"http://127.0.0.1:2\"]\n  capabilities = [\"pull\", \"resolve\"]\n\n\
         [host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
    )
    .expect("hosts.toml");
    rt().block_on(async {
        let mut c = client(&d).await;
        let id = pull(&mut c, "registry.crius.test/crius/busybox:latest").await;
        assert!(id.starts_with("sha256:"));
        let st = image_status(&mut c, "registry.crius.test/crius/busybox")
            .await
            .expect("status")
            .image
            .expect("present under its own name");
        assert_eq!(
            st.repo_tags,
            vec!["registry.crius.test/crius/busybox:latest".to_string()]
        );
        let log = std::fs::read_to_string(&d.log).unwrap_or_default();
        assert!(
            log.contains("pull attempt failed") && log.contains("127.0.0.1:2"),
            "the dead mirror's failure is logged:\n{}",
            d.log_tail()
        );
        // Every host down: UNAVAILABLE naming the last one tried.
        std::fs::write(
            host_dir.join("hosts.toml"),
            "server = \"http://127.0.0.1:1\"\n[host.\"http://127.0.0.1:2\"]\n",
        )
        .expect("hosts.toml");
        let e = try_pull(&mut c, "registry.crius.test/crius/config-test:latest")
            .await
            .expect_err("all hosts down");
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        assert!(e.message().contains("127.0.0.1:1"), "{e}");
    });
    finish(env, &d);
}

/// criusd keeps its images in memory; a record removed beside it (`ctr images rm` in its
/// namespace) reaches it as a containerd event: ImageStatus and ListImages stop showing it.
#[test]
fn criusd_sees_an_image_removed_beside_it() {
    let mut env = env_or_skip!("criusd_sees_an_image_removed_beside_it");
    let Some(d) = start(&mut env) else { return };
    let runtime = rt();
    runtime.block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let st = image_status(&mut c, registry::BUSYBOX)
            .await
            .expect("status");
        assert!(st.image.is_some(), "pulled");
        // Twice: the second answer is the one kept in memory.
        assert_eq!(list_images(&mut c).await.len(), 1);
        assert_eq!(list_images(&mut c).await.len(), 1);
    });
    criusd_common::ctr(&mut env, &["images", "rm", registry::BUSYBOX]);
    runtime.block_on(async {
        let mut c = client(&d).await;
        let gone = criusd_common::eventually(10, || {
            let mut c = c.clone();
            async move {
                let st = image_status(&mut c, registry::BUSYBOX)
                    .await
                    .expect("status");
                st.image.is_none().then_some(())
            }
        })
        .await;
        assert!(
            gone.is_some(),
            "criusd still shows the removed image\n{}",
            d.log_tail()
        );
        let left: Vec<_> = list_images(&mut c)
            .await
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .collect();
        assert!(!left.iter().any(|t| t == registry::BUSYBOX), "{left:?}");
    });
    finish(env, &d);
}

/// The committed snapshots in criusd's namespace (an image's unpacked layers), each with its
/// parent.
fn committed_snapshots(env: &mut crius_test::TestEnv) -> Vec<(String, Option<String>)> {
    let mut v: Vec<_> = criusd_common::ctr(env, &["snapshots", "ls"])
        .lines()
        .skip(1)
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [key, "Committed"] => Some((key.to_string(), None)),
            [key, parent, "Committed"] => Some((key.to_string(), Some(parent.to_string()))),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn criusd_pulls_again_a_layer_removed_under_an_image() {
    let mut env = env_or_skip!("criusd_pulls_again_a_layer_removed_under_an_image");
    let Some(d) = start(&mut env) else { return };
    let runtime = rt();
    let id = runtime.block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await
    });
    let layers = committed_snapshots(&mut env);
    // The top layer: no other layer's parent.
    let top = layers
        .iter()
        .map(|(key, _)| key)
        .find(|key| !layers.iter().any(|(_, p)| p.as_ref() == Some(*key)))
        .unwrap_or_else(|| panic!("no top layer in {layers:?}"))
        .clone();
    // The records still name the image, but its top layer is gone: a pull must not take the
    // image for present.
    criusd_common::ctr(&mut env, &["snapshots", "rm", &top]);
    // Only the top is sure to be gone: nothing references the layers under it any more, so
    // containerd's GC may take them too, at a time of its choosing.
    let left = committed_snapshots(&mut env);
    assert!(
        !left.iter().any(|(key, _)| *key == top),
        "{top} still there: {left:?}"
    );
    runtime.block_on(async {
        let mut c = client(&d).await;
        assert_eq!(pull(&mut c, registry::BUSYBOX).await, id);
    });
    assert_eq!(
        committed_snapshots(&mut env),
        layers,
        "the pull unpacked the layer again\n{}",
        d.log_tail()
    );
    finish(env, &d);
}
