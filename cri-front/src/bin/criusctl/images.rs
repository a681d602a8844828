//! Images: `pull`, `images`, `inspecti`, `rmi`, `imagefsinfo`.

use crate::configfile;
use crate::conn::Cri;
use crate::output::{self, human_size, print_message, print_value, trunc_id, Format, Table};
use anyhow::{bail, Context};
use clap::Args;
use crius_proto::runtime as cri;
use std::io::{IsTerminal, Write};
use std::time::Instant;

fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// user:password for the registry.
    #[arg(long)]
    creds: Option<String>,
    /// base64 of user:password.
    #[arg(long)]
    auth: Option<String>,
    /// PodSandboxConfig to pull for (JSON or YAML).
    #[arg(long = "pod-config")]
    pod_config: Option<String>,
    image: String,
}

pub async fn pull(c: &Cri, a: PullArgs) -> anyhow::Result<()> {
    let auth = match (a.creds, a.auth) {
        (Some(cr), _) => {
            let (u, p) = cr.split_once(':').context("--creds: want user:password")?;
            Some(cri::AuthConfig {
                username: u.into(),
                password: p.into(),
                ..Default::default()
            })
        }
        (None, Some(auth)) => Some(cri::AuthConfig {
            auth,
            ..Default::default()
        }),
        (None, None) => None,
    };
    let pod = match a.pod_config {
        Some(p) => Some(configfile::load::<cri::PodSandboxConfig>(
            &p,
            "runtime.v1.PodSandboxConfig",
        )?),
        None => None,
    };
    let r = pull_image(c, &a.image, auth, pod).await?;
    println!("Image is up to date for {r}");
    Ok(())
}

/// PullImage; the image ref. On a terminal, stderr shows a running timer meanwhile (CRI's pull is a
/// single call: there is no byte count to show).
pub async fn pull_image(
    c: &Cri,
    image: &str,
    auth: Option<cri::AuthConfig>,
    pod: Option<cri::PodSandboxConfig>,
) -> anyhow::Result<String> {
    let op = format!("PullImage {image}");
    let mut client = c.image.clone();
    let call = c.slow(
        &op,
        client.pull_image(cri::PullImageRequest {
            image: spec(image),
            auth,
            sandbox_config: pod,
        }),
    );
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    tokio::pin!(call);
    let frames = ['|', '/', '-', '\\'];
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(120));
    let mut n = 0usize;
    let r = loop {
        tokio::select! {
            r = &mut call => break r,
            _ = tick.tick(), if tty => {
                n += 1;
                eprint!("\r{} pulling {image} … {:.1}s", frames[n % 4], started.elapsed().as_secs_f32());
                let _ = std::io::stderr().flush();
            }
        }
    };
    if tty {
        eprint!("\r\x1b[2K");
    }
    Ok(r?.image_ref)
}

/// Whether the runtime has `image`.
pub async fn present(c: &Cri, image: &str) -> anyhow::Result<bool> {
    Ok(status(c, image, false).await?.image.is_some())
}

async fn status(c: &Cri, image: &str, verbose: bool) -> anyhow::Result<cri::ImageStatusResponse> {
    c.quick(
        &format!("ImageStatus {image}"),
        c.image.clone().image_status(cri::ImageStatusRequest {
            image: spec(image),
            verbose,
        }),
    )
    .await
}

async fn list(c: &Cri, filter: Option<String>) -> anyhow::Result<Vec<cri::Image>> {
    Ok(c.quick(
        "ListImages",
        c.image.clone().list_images(cri::ListImagesRequest {
            filter: filter.map(|f| cri::ImageFilter { image: spec(&f) }),
        }),
    )
    .await?
    .images)
}

/// `repo:tag` → (repo, tag); the tag is after the last ':' past the last '/'.
fn split_tag(t: &str) -> (String, String) {
    let slash = t.rfind('/').map(|i| i + 1).unwrap_or(0);
    match t[slash..].rfind(':') {
        Some(i) => (t[..slash + i].to_string(), t[slash + i + 1..].to_string()),
        None => (t.to_string(), "<none>".into()),
    }
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[arg(short, long)]
    quiet: bool,
    #[arg(long)]
    digests: bool,
    #[arg(long)]
    no_trunc: bool,
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Only this image.
    image: Option<String>,
}

pub async fn images(c: &Cri, a: ImagesArgs) -> anyhow::Result<()> {
    let mut imgs = list(c, a.image.clone()).await?;
    // Runtimes may ignore the filter (containerd does): apply it here as crictl does.
    if let Some(f) = &a.image {
        let repo_only = !f.contains(':') || f.rfind(':') < f.rfind('/');
        imgs.retain(|i| {
            i.id.trim_start_matches("sha256:")
                .starts_with(f.trim_start_matches("sha256:"))
                || i.repo_tags
                    .iter()
                    .chain(i.repo_digests.iter())
                    .any(|t| t == f || (repo_only && split_tag(t).0 == *f))
        });
    }
    // crictl's order: by first tag, else first digest, else id.
    imgs.sort_by(|x, y| {
        let (tags, digests) = (
            (x.repo_tags.first(), y.repo_tags.first()),
            (x.repo_digests.first(), y.repo_digests.first()),
        );
        match (tags, digests) {
            ((Some(a), Some(b)), _) | (_, (Some(a), Some(b))) => a.cmp(b),
            _ => x.id.cmp(&y.id),
        }
    });
    if a.quiet {
        for i in &imgs {
            println!("{}", i.id);
        }
        return Ok(());
    }
    if a.output != Format::Table {
        return print_message(
            &cri::ListImagesResponse { images: imgs },
            "runtime.v1.ListImagesResponse",
            a.output,
        );
    }
    let mut head = vec!["IMAGE", "TAG"];
    if a.digests {
        head.push("DIGEST");
    }
    head.extend(["IMAGE ID", "SIZE"]);
    let mut t = Table::new(&head);
    for i in &imgs {
        let digest = i
            .repo_digests
            .first()
            .and_then(|d| d.split_once('@'))
            .map(|(_, d)| trunc_id(d, a.no_trunc))
            .unwrap_or_else(|| "<none>".into());
        let tags: Vec<(String, String)> = if i.repo_tags.is_empty() {
            let repo = i
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(r, _)| r.to_string())
                .unwrap_or_else(|| "<none>".into());
            vec![(repo, "<none>".into())]
        } else {
            i.repo_tags.iter().map(|t| split_tag(t)).collect()
        };
        for (repo, tag) in tags {
            let mut row = vec![repo, tag];
            if a.digests {
                row.push(digest.clone());
            }
            row.push(trunc_id(&i.id, a.no_trunc));
            row.push(human_size(i.size));
            t.row(row);
        }
    }
    t.print();
    Ok(())
}

#[derive(Args, Debug)]
pub struct InspectiArgs {
    #[arg(short, long, value_enum, default_value_t = Format::Json)]
    output: Format,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn inspecti(c: &Cri, a: InspectiArgs) -> anyhow::Result<()> {
    for img in &a.images {
        let r = status(c, img, true).await?;
        let Some(image) = r.image else {
            bail!("no such image {img}");
        };
        let status = crate::protojson::to_value(&image, "runtime.v1.Image")?;
        print_value(&output::status_info(status, &r.info), a.output)?;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove all images.
    #[arg(short, long)]
    all: bool,
    images: Vec<String>,
}

pub async fn rmi(c: &Cri, a: RmiArgs) -> anyhow::Result<()> {
    let targets = if a.all {
        list(c, None).await?.into_iter().map(|i| i.id).collect()
    } else if a.images.is_empty() {
        bail!("rmi: give images, or -a for all");
    } else {
        a.images
    };
    for img in targets {
        let st = status(c, &img, false).await?;
        let Some(image) = st.image else {
            bail!("no such image {img}");
        };
        c.slow(
            &format!("RemoveImage {img}"),
            c.image.clone().remove_image(cri::RemoveImageRequest {
                image: spec(&image.id),
            }),
        )
        .await?;
        for t in image.repo_tags.iter().chain(image.repo_digests.iter()) {
            println!("Deleted: {t}");
        }
        if image.repo_tags.is_empty() && image.repo_digests.is_empty() {
            println!("Deleted: {}", image.id);
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct FsArgs {
    #[arg(short, long, value_enum, default_value_t = Format::Json)]
    output: Format,
}

pub async fn imagefsinfo(c: &Cri, a: FsArgs) -> anyhow::Result<()> {
    let r = c
        .quick(
            "ImageFsInfo",
            c.image.clone().image_fs_info(cri::ImageFsInfoRequest {}),
        )
        .await?;
    if a.output == Format::Table {
        let mut t = Table::new(&["KIND", "MOUNTPOINT", "USED", "INODES"]);
        for (kind, list) in [
            ("image", &r.image_filesystems),
            ("container", &r.container_filesystems),
        ] {
            for f in list {
                t.row(vec![
                    kind.into(),
                    f.fs_id.clone().map(|i| i.mountpoint).unwrap_or_default(),
                    human_size(f.used_bytes.map(|u| u.value).unwrap_or(0)),
                    f.inodes_used.map(|u| u.value).unwrap_or(0).to_string(),
                ]);
            }
        }
        t.print();
        return Ok(());
    }
    // The whole response under "status", as current crictl prints it (v1.26 printed one
    // {"status": FilesystemUsage} per image filesystem).
    let status = crate::protojson::to_value(&r, "runtime.v1.ImageFsInfoResponse")?;
    print_value(&output::status_info(status, &Default::default()), a.output)
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(
            split_tag("127.0.0.1:5000/crius/busybox:latest"),
            ("127.0.0.1:5000/crius/busybox".into(), "latest".into())
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x".into(), "<none>".into())
        );
    }
}
