//! criusd pulling from registries that ask for something: TLS from a private CA, a client
//! certificate (hosts.toml `client`, or a Docker-style certs.d dir), basic credentials, and
//! Docker's token flow. The registries are real `docker-registry` processes over the local images.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::{Code, Status};
use crius_test::cri::CriClient;
use crius_test::env_or_skip;
use crius_test::secure_registry::{
    Credentials, SecureRegistry, PASSWORD, REFRESH_TOKEN, SERVICE, USER,
};
use criusd_common::{client, finish, rt, start, Criusd};
use std::path::Path;

async fn pull_as(
    c: &mut CriClient,
    image: &str,
    auth: Option<cri::AuthConfig>,
) -> Result<String, Status> {
    c.image
        .pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            auth,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().image_ref)
}

fn login(user: &str, password: &str) -> Option<cri::AuthConfig> {
    Some(cri::AuthConfig {
        username: user.into(),
        password: password.into(),
        ..Default::default()
    })
}

/// criusd's registry config dir (the test containerd's certs.d, as criusd_common sets it up).
fn certs_d(d: &Criusd) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&d.config).expect("criusd config");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("registry_config_dir = "))
        .expect("registry_config_dir in criusd config");
    line.trim_matches('"').into()
}

fn write_hosts(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir).expect("host dir");
    std::fs::write(dir.join("hosts.toml"), text).expect("hosts.toml");
}

#[test]
fn criusd_pulls_over_mutual_tls_with_basic_auth() {
    let mut env = env_or_skip!("criusd_pulls_over_mutual_tls_with_basic_auth");
    let Some(d) = start(&mut env) else { return };
    let reg = SecureRegistry::start(&mut env, true, Credentials::Basic).expect("secured registry");
    let image = format!("{}/crius/busybox:latest", reg.addr);
    let host_dir = certs_d(&d).join(&reg.addr);
    // CA and client pair copied next to hosts.toml and named relatively, as operators do.
    std::fs::create_dir_all(&host_dir).expect("host dir");
    for (from, to) in [
        (&reg.pki.ca, "ca.crt"),
        (&reg.pki.client_cert, "client.pem"),
        (&reg.pki.client_key, "client-key.pem"),
    ] {
        std::fs::copy(from, host_dir.join(to)).expect("copy pki");
    }
    let server = format!("server = \"https://{}\"\nca = \"ca.crt\"\n", reg.addr);
    rt().block_on(async {
        let mut c = client(&d).await;

        // No client certificate: the TLS handshake is refused, and the cause is said.
        write_hosts(&host_dir, &server);
        let e = pull_as(&mut c, &image, login(USER, PASSWORD))
            .await
            .expect_err("no client certificate");
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        assert!(e.message().contains(&reg.addr), "{e}");
        assert!(e.message().to_lowercase().contains("certificate"), "{e}");

        // With it, but without credentials or with wrong ones: UNAUTHENTICATED.
        write_hosts(
            &host_dir,
            &format!("{server}client = [[\"client.pem\", \"client-key.pem\"]]\n"),
        );
        let e = pull_as(&mut c, &image, None)
            .await
            .expect_err("no credentials");
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
        let e = pull_as(&mut c, &image, login(USER, "wrong"))
            .await
            .expect_err("wrong password");
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");

        // Certificate and credentials: the pull goes through.
        let id = pull_as(&mut c, &image, login(USER, PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("pull over mutual TLS: {e}\n{}", d.log_tail()));
        assert!(id.starts_with("sha256:"), "{id}");

        // The same files in Docker's certs.d layout (no hosts.toml) work too; `auth` form this time.
        std::fs::remove_dir_all(&host_dir).expect("clear host dir");
        std::fs::create_dir_all(&host_dir).expect("host dir");
        std::fs::copy(&reg.pki.ca, host_dir.join("ca.crt")).expect("ca");
        std::fs::copy(&reg.pki.client_cert, host_dir.join("client.cert")).expect("cert");
        std::fs::copy(&reg.pki.client_key, host_dir.join("client.key")).expect("key");
        let cfg = format!("{}/crius/config-test:latest", reg.addr);
        let auth = Some(cri::AuthConfig {
            auth: base64_of(&format!("{USER}:{PASSWORD}")),
            ..Default::default()
        });
        pull_as(&mut c, &cfg, auth)
            .await
            .unwrap_or_else(|e| panic!("pull with docker-style certs.d: {e}\n{}", d.log_tail()));
    });
    finish(env, &d);
}

#[test]
fn criusd_pulls_through_the_token_flow() {
    let mut env = env_or_skip!("criusd_pulls_through_the_token_flow");
    let Some(d) = start(&mut env) else { return };
    let reg = SecureRegistry::start(&mut env, false, Credentials::Token).expect("secured registry");
    let image = format!("{}/crius/busybox:latest", reg.addr);
    let host_dir = certs_d(&d).join(&reg.addr);
    write_hosts(
        &host_dir,
        &format!(
            "server = \"https://{}\"\nca = \"{}\"\n",
            reg.addr,
            reg.pki.ca.display()
        ),
    );
    let ts = reg.token_server.as_ref().expect("token server");
    rt().block_on(async {
        let mut c = client(&d).await;
        // The token server refuses anonymous requests: so does the pull.
        let e = pull_as(&mut c, &image, None).await.expect_err("anonymous");
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");

        let id = pull_as(&mut c, &image, login(USER, PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("pull with a token: {e}\n{}", d.log_tail()));
        assert!(id.starts_with("sha256:"), "{id}");
        let asked = ts.requests.lock().expect("requests").clone();
        assert!(
            asked
                .iter()
                .any(|q| q.contains("scope=repository%3Acrius%2Fbusybox%3Apull")
                    && q.contains(&format!("service={SERVICE}"))),
            "token requests name the service and the pull scope: {asked:?}"
        );
        // An identity token (OAuth2 refresh token) is exchanged at the token server.
        let refresh = Some(cri::AuthConfig {
            identity_token: REFRESH_TOKEN.into(),
            ..Default::default()
        });
        pull_as(&mut c, &format!("{}/crius/pause:latest", reg.addr), refresh)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "pull with an identity token: {e}\n{:?}",
                    ts.requests.lock().expect("r")
                )
            });
        // A registry token from the request is sent as it is; a bogus one is refused.
        let bogus = Some(cri::AuthConfig {
            registry_token: "not-a-token".into(),
            ..Default::default()
        });
        let e = pull_as(
            &mut c,
            &format!("{}/crius/config-test:latest", reg.addr),
            bogus,
        )
        .await
        .expect_err("bogus registry token");
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    });
    finish(env, &d);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
