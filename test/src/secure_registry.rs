//! A second registry of the test's, over the local registry's storage (read-only), that asks for
//! what real registries ask for: TLS from the test's own CA, client certificates (mutual TLS), and
//! credentials — htpasswd (basic) or Docker's token flow with a token server of the test's.
//!
//! Certificates come from the `openssl` command; the token server is a small HTTP/1.0 listener
//! that checks the basic credentials and hands out a JWT signed with `openssl dgst`.

use crate::{process, TestEnv};
use anyhow::{anyhow, bail, Context};
use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Username and password the secured registries accept.
pub const USER: &str = "crius";
pub const PASSWORD: &str = "s3cret";
/// The OAuth2 refresh token the token server exchanges for an access token.
pub const REFRESH_TOKEN: &str = "crius-refresh-token";

/// Files of the test's PKI, all PEM, under one dir.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
    pub fn create(dir: &Path) -> crate::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let p = |n: &str| dir.join(n);
        self_signed("crius-test-ca", &p("ca.key"), &p("ca.crt"))?;
        for (name, cn, ext) in [
            (
                "server",
                "127.0.0.1",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                "crius-test-client",
                "extendedKeyUsage=clientAuth\n",
            ),
        ] {
            std::fs::write(p(&format!("{name}.ext")), ext)?;
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &s(&p(&format!("{name}.key"))),
                "-out",
                &s(&p(&format!("{name}.csr"))),
            ])?;
            openssl(&[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &s(&p(&format!("{name}.csr"))),
                "-CA",
                &s(&p("ca.crt")),
                "-CAkey",
                &s(&p("ca.key")),
                "-CAcreateserial",
                "-extfile",
                &s(&p(&format!("{name}.ext"))),
                "-out",
                &s(&p(&format!("{name}.crt"))),
            ])?;
        }
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca: p("ca.crt"),
            server_cert: p("server.crt"),
            server_key: p("server.key"),
            client_cert: p("client.crt"),
            client_key: p("client.key"),
        })
    }
}

/// How the secured registry authenticates clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    None,
    /// htpasswd: a `Basic` challenge.
    Basic,
    /// Docker's token flow: a `Bearer` challenge naming the test's token server.
    Token,
}

/// A running secured registry (a service of the [`TestEnv`]: stopped by `finish`).
pub struct SecureRegistry {
    /// `127.0.0.1:<port>`: the host part of image references.
    pub addr: String,
    pub pki: Pki,
    pub token_server: Option<TokenServer>,
}

impl SecureRegistry {
    /// Start one on a free port over the local registry's storage. `client_certs` makes TLS
    /// require a client certificate signed by the test's CA.
    pub fn start(
        env: &mut TestEnv,
        client_certs: bool,
        creds: Credentials,
    ) -> crate::Result<SecureRegistry> {
        let dir = env.dir().join(format!("registry-{}", std::process::id()));
        let pki = Pki::create(&dir.join("pki"))?;
        let addr = free_addr()?;
        let mut auth = String::new();
        let mut token_server = None;
        match creds {
            Credentials::None => {}
            Credentials::Basic => {
                let hash = bcrypt::hash(PASSWORD, 4).context("bcrypt")?;
                std::fs::write(dir.join("htpasswd"), format!("{USER}:{hash}\n"))?;
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: crius-test\n    path: {}\n",
                    dir.join("htpasswd").display()
                );
            }
            Credentials::Token => {
                let ts = TokenServer::start(&dir.join("token"))?;
                auth = format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    ts.addr,
                    ts.signer_cert.display()
                );
                token_server = Some(ts);
            }
        }
        let clientcas = if client_certs {
            format!("    clientcas:\n      - {}\n", pki.ca.display())
        } else {
            String::new()
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: true\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {cert}\n    key: {key}\n{clientcas}{auth}",
            storage = storage_dir().display(),
            cert = pki.server_cert.display(),
            key = pki.server_key.display(),
        );
        std::fs::write(dir.join("config.yml"), config)?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        env.spawn_service(
            "docker-registry",
            Command::new("docker-registry")
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdout(log.try_clone()?)
                .stderr(log),
        )?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&addr).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "secured registry did not listen on {addr}: {}",
                    std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(SecureRegistry {
            addr,
            pki,
            token_server,
        })
    }
}

/// Where `hack/registry-up.sh` keeps the local registry's blobs (`$CRIUS_DEV_LIB/registry`).
pub fn storage_dir() -> PathBuf {
    let lib = std::env::var("CRIUS_DEV_LIB").unwrap_or_else(|_| "/var/lib/crius-dev".into());
    PathBuf::from(lib).join("registry")
}

/// The `service` and `issuer` the registry and the token server agree on.
pub const SERVICE: &str = "crius-test-registry";
pub const ISSUER: &str = "crius-test-issuer";

/// A token server: answers `GET /token` with a JWT for [`USER`]'s basic credentials, and
/// `POST /token` (OAuth2 `grant_type=refresh_token`) for [`REFRESH_TOKEN`]; 401 otherwise.
pub struct TokenServer {
    pub addr: String,
    pub signer_cert: PathBuf,
    /// The query strings it was asked with, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    fn start(dir: &Path) -> crate::Result<TokenServer> {
        std::fs::create_dir_all(dir)?;
        let cert = dir.join("signer.crt");
        let key = dir.join("signer.key");
        self_signed("crius-test-token-signer", &key, &cert)?;
        let token = sign_token(dir, &cert, &key)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, st) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    let _ = answer_token_request(c, &token, &reqs);
                }
            }
        });
        Ok(TokenServer {
            addr,
            signer_cert: cert,
            requests,
            stop,
        })
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn answer_token_request(
    conn: TcpStream,
    token: &str,
    requests: &Mutex<Vec<String>>,
) -> crate::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let target = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut authorized = false;
    let mut length = 0usize;
    let want = format!(
        "basic {}",
        base64_std(format!("{USER}:{PASSWORD}").as_bytes())
    );
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") && v.trim().eq_ignore_ascii_case(&want) {
                authorized = true;
            }
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut asked = target.split_once('?').map(|(_, q)| q.to_string());
    if line.starts_with("POST") {
        let mut body = vec![0u8; length.min(64 << 10)];
        std::io::Read::read_exact(&mut r, &mut body)?;
        let form = String::from_utf8_lossy(&body).into_owned();
        authorized = form.contains("grant_type=refresh_token")
            && form
                .split('&')
                .any(|kv| kv == format!("refresh_token={REFRESH_TOKEN}"));
        asked = Some(form);
    }
    if let Some(q) = asked {
        requests.lock().map_err(|_| anyhow!("poisoned"))?.push(q);
    }
    let mut w = conn;
    if authorized && target.starts_with("/token") {
        // OAuth2 answers carry `access_token`, Docker's `token`: one of each exercises both.
        let field = if line.starts_with("POST") {
            "access_token"
        } else {
            "token"
        };
        let body = format!("{{\"{field}\":\"{token}\",\"expires_in\":600}}");
        write!(
            w,
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
    } else {
        write!(w, "HTTP/1.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")?;
    }
    Ok(())
}

/// A JWT (RS256) the registry accepts: pull on every `crius/*` repository for ten minutes, its
/// signer certificate in `x5c` (the registry trusts it through `rootcertbundle`).
fn sign_token(dir: &Path, cert: &Path, key: &Path) -> crate::Result<String> {
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(cert)
        .output()?
        .stdout;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = format!(
        "{{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5c\":[\"{}\"]}}",
        base64_std(&der)
    );
    let access: Vec<String> = ["crius/busybox", "crius/config-test", "crius/pause"]
        .iter()
        .map(|n| format!("{{\"type\":\"repository\",\"name\":\"{n}\",\"actions\":[\"pull\"]}}"))
        .collect();
    let claims = format!(
        "{{\"iss\":\"{ISSUER}\",\"sub\":\"{USER}\",\"aud\":\"{SERVICE}\",\"exp\":{},\"nbf\":{},\"iat\":{now},\"jti\":\"crius-{now}\",\"access\":[{}]}}",
        now + 600,
        now - 60,
        access.join(",")
    );
    let signing_input = format!(
        "{}.{}",
        base64_url(header.as_bytes()),
        base64_url(claims.as_bytes())
    );
    let input = dir.join("jwt.input");
    std::fs::write(&input, &signing_input)?;
    let sig = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&input)
        .output()?;
    if !sig.status.success() || sig.stdout.is_empty() {
        bail!(
            "openssl dgst -sign: {}",
            String::from_utf8_lossy(&sig.stderr)
        );
    }
    Ok(format!("{signing_input}.{}", base64_url(&sig.stdout)))
}

/// A self-signed certificate (a CA, or the token signer) and its key, valid two days.
fn self_signed(cn: &str, key: &Path, cert: &Path) -> crate::Result<()> {
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={cn}"),
        "-keyout",
        &s(key),
        "-out",
        &s(cert),
    ])
}

fn openssl(args: &[&str]) -> crate::Result<()> {
    process::output(Command::new("openssl").args(args)).map(|_| ())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn free_addr() -> crate::Result<String> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

fn base64_std(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn base64_url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}
