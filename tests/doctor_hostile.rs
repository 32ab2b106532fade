//! Doctor against slow and hostile peers (issue 9, item 5). Servers on 127.0.0.1, written here:
//! silent ones, one that never accepts, one byte a second, endless and huge answers, and TLS
//! that cannot be trusted or is not TLS at all. Each of doctor's endpoints (GitLab, the gateway,
//! the model) is pointed at each in turn. The real binary must end within its budget, exit 1,
//! report every check aimed at the peer as a failure that names the cause, and keep its peak
//! RSS bounded. The figures go to RELIABILITY.md.

use crate::support;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;

/// Seconds each check may take (`doctor --timeout`).
const CHECK_TIMEOUT_SECS: u64 = 2;
/// Doctor's promise: the run ends within the per-check timeout plus its 1.5 s margin
/// (`doctor::RUN_MARGIN`); a second more for starting the process.
const RUN_LIMIT: Duration = Duration::from_millis(CHECK_TIMEOUT_SECS * 1000 + 1500 + 1000);
/// Peak resident memory doctor may reach, whatever the peer sends.
const RSS_LIMIT_KB: i64 = 200 * 1024;
/// What the endless bodies stop at if doctor never hangs up.
const ENDLESS_BODY_BYTES: u64 = 4 << 30;
const TEN_GB: u64 = 10_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// Accepts, reads the request, never answers.
    Silent,
    /// Its accept queue is full: the connection never completes.
    NeverAccepts,
    /// Sends its status line and headers one byte a second, forever.
    TrickledHead,
    /// Good headers, then the body one byte a second.
    TrickledBody,
    /// 200 with a chunked body that never ends (4 GiB if nobody hangs up).
    EndlessBody,
    /// `Content-Length: 10000000000`, and sends it.
    TenGbLength,
    /// Header lines without end.
    HugeHead,
    /// A self-signed certificate, no --ca-cert.
    SelfSigned,
    /// Signed by the CA given with --ca-cert, for another host name.
    WrongHost,
    /// Signed by the CA given with --ca-cert, expired in 2020.
    Expired,
    /// Answers the TLS ClientHello with a plain HTTP 400.
    PlainHttp,
    /// Answers the TLS ClientHello with random bytes.
    Garbage,
    /// Reads the TLS ClientHello, never answers.
    TlsSilent,
}

const PEERS: [Peer; 13] = [
    Peer::Silent,
    Peer::NeverAccepts,
    Peer::TrickledHead,
    Peer::TrickledBody,
    Peer::EndlessBody,
    Peer::TenGbLength,
    Peer::HugeHead,
    Peer::SelfSigned,
    Peer::WrongHost,
    Peer::Expired,
    Peer::PlainHttp,
    Peer::Garbage,
    Peer::TlsSilent,
];

/// What a person must read in the message to know what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Timeout,
    TooLarge,
    Tls,
}

impl Cause {
    fn named_in(self, message: &str) -> bool {
        let lower = message.to_ascii_lowercase();
        match self {
            Cause::Timeout => lower.contains("within"),
            Cause::TooLarge => lower.contains("too large") || lower.contains("larger than"),
            Cause::Tls => lower.contains("tls") || lower.contains("certificate"),
        }
    }
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Silent => "silent",
            Peer::NeverAccepts => "never-accepts",
            Peer::TrickledHead => "trickled-head",
            Peer::TrickledBody => "trickled-body",
            Peer::EndlessBody => "endless-body",
            Peer::TenGbLength => "10GB-length",
            Peer::HugeHead => "huge-head",
            Peer::SelfSigned => "tls-self-signed",
            Peer::WrongHost => "tls-wrong-host",
            Peer::Expired => "tls-expired",
            Peer::PlainHttp => "tls-plain-http",
            Peer::Garbage => "tls-garbage",
            Peer::TlsSilent => "tls-silent",
        }
    }

    fn https(self) -> bool {
        matches!(
            self,
            Peer::SelfSigned
                | Peer::WrongHost
                | Peer::Expired
                | Peer::PlainHttp
                | Peer::Garbage
                | Peer::TlsSilent
        )
    }

    fn cause(self) -> Cause {
        match self {
            Peer::Silent
            | Peer::NeverAccepts
            | Peer::TrickledHead
            | Peer::TrickledBody
            | Peer::TlsSilent => Cause::Timeout,
            Peer::EndlessBody | Peer::TenGbLength | Peer::HugeHead => Cause::TooLarge,
            _ => Cause::Tls,
        }
    }

    /// Whether it reads the request, so it can answer `/v1/models` well and fail the rest.
    fn reads_requests(self) -> bool {
        !self.https() && self != Peer::NeverAccepts
    }
}

/// Which of doctor's endpoints points at the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Gitlab,
    Gateway,
    /// `model.models` fails on the peer.
    ModelList,
    /// The peer lists the model well; `model.chat` and `model.fim` fail on it.
    ModelChat,
}

const ENDPOINTS: [Endpoint; 4] = [
    Endpoint::Gitlab,
    Endpoint::Gateway,
    Endpoint::ModelList,
    Endpoint::ModelChat,
];

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Gitlab => "gitlab",
            Endpoint::Gateway => "gateway",
            Endpoint::ModelList => "model-list",
            Endpoint::ModelChat => "model-chat",
        }
    }

    /// Doctor's arguments with the peer at `base`, and the checks that call it.
    fn doctor_args(self, base: &str) -> (Vec<String>, Vec<&'static str>) {
        let mut args: Vec<String> = vec!["--json".into(), "doctor".into()];
        args.extend(["--timeout".into(), CHECK_TIMEOUT_SECS.to_string()]);
        let (flags, checks): (Vec<String>, Vec<&str>) = match self {
            Endpoint::Gitlab => (
                vec![
                    "--gitlab-url".into(),
                    base.into(),
                    "--gitlab-token".into(),
                    "glpat-hostile-peer-test".into(),
                ],
                vec!["gitlab.readiness", "gitlab.version", "gitlab.license"],
            ),
            Endpoint::Gateway => (
                vec!["--gateway-url".into(), base.into()],
                vec!["gateway.healthz", "gateway.tls"],
            ),
            Endpoint::ModelList | Endpoint::ModelChat => (
                vec![
                    "--model-endpoint".into(),
                    format!("{base}/v1"),
                    "--model-identifier".into(),
                    "custom_openai/codestral".into(),
                ],
                if self == Endpoint::ModelList {
                    vec!["model.models"]
                } else {
                    vec!["model.chat", "model.fim"]
                },
            ),
        };
        args.extend(flags);
        for check in &checks {
            args.extend(["--only".into(), check.to_string()]);
        }
        (args, checks)
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates (the openssl CLI)

struct Certificates {
    dir: tempfile::TempDir,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI must be installed (scripts/install-deps)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC_KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

impl Certificates {
    /// A CA, a self-signed leaf for 127.0.0.1, and two leaves the CA signed: one for another
    /// host name, one for 127.0.0.1 that expired in 2020.
    fn make() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // NAME.key and either a certificate signing itself (NAME.crt) or a request (NAME.csr).
        let new_key = |name: &str, subject: &str, extensions: &[&str], self_signed: bool| {
            let key = format!("{name}.key");
            let out = format!("{name}.{}", if self_signed { "crt" } else { "csr" });
            let mut req = vec!["req", "-nodes", "-subj", subject];
            req.extend(if self_signed {
                &["-x509", "-days", "30"][..]
            } else {
                &["-new"][..]
            });
            req.extend(EC_KEY);
            for extension in extensions {
                req.extend(["-addext", extension]);
            }
            req.extend(["-keyout", &key, "-out", &out]);
            openssl(&req, d);
        };
        let ca = [
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
        ];
        new_key("ca", "/CN=duo-selfhost hostile test CA", &ca, true);
        let own = [
            "subjectAltName=IP:127.0.0.1",
            "basicConstraints=critical,CA:FALSE",
        ];
        new_key("self-signed", "/CN=127.0.0.1", &own, true);

        std::fs::write(
            d.join("ca.cnf"),
            "[ca]\ndefault_ca = local\n[local]\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\n\
             default_md = sha256\npolicy = anything\ncopy_extensions = copy\n\
             unique_subject = no\n[anything]\ncommonName = supplied\n",
        )
        .unwrap();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("serial"), "01\n").unwrap();
        let issue = |name: &str, san: &str, start: &str, end: &str| {
            let extensions = [
                san,
                "basicConstraints=critical,CA:FALSE",
                "extendedKeyUsage=serverAuth",
            ];
            new_key(name, "/CN=hostile-peer", &extensions, false);
            let (csr, crt) = (format!("{name}.csr"), format!("{name}.crt"));
            openssl(
                &[
                    "ca",
                    "-batch",
                    "-notext",
                    "-config",
                    "ca.cnf",
                    "-cert",
                    "ca.crt",
                    "-keyfile",
                    "ca.key",
                    "-in",
                    &csr,
                    "-out",
                    &crt,
                    "-startdate",
                    start,
                    "-enddate",
                    end,
                ],
                d,
            );
        };
        let now = time::OffsetDateTime::now_utc();
        let stamp = |t: time::OffsetDateTime| {
            format!("{:04}{:02}{:02}000000Z", t.year(), t.month() as u8, t.day())
        };
        issue(
            "wrong-host",
            "subjectAltName=DNS:gitlab.wrong-host.example",
            &stamp(now - time::Duration::days(1)),
            &stamp(now + time::Duration::days(30)),
        );
        issue(
            "expired",
            "subjectAltName=IP:127.0.0.1",
            "20200101000000Z",
            "20200401000000Z",
        );
        Certificates { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn server_config(&self, name: &str) -> Arc<rustls::ServerConfig> {
        let d = self.dir.path();
        support::gitlab_fixture::tls_config(
            &d.join(format!("{name}.crt")),
            &d.join(format!("{name}.key")),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The peers

/// A running peer; dropping it stops its accept loop and every connection.
struct RunningPeer {
    port: u16,
    /// Bytes the peer wrote, over all connections.
    sent: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The never-accepting listener and the connections that fill its queue.
    _held: Option<(std::net::TcpListener, Vec<std::net::TcpStream>)>,
}

impl Drop for RunningPeer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn start_peer(
    runtime: &tokio::runtime::Runtime,
    peer: Peer,
    endpoint: Endpoint,
    certs: &Certificates,
) -> RunningPeer {
    let sent = Arc::new(AtomicU64::new(0));
    if peer == Peer::NeverAccepts {
        return never_accepting_peer(sent);
    }
    let tls = match peer {
        Peer::SelfSigned => Some(certs.server_config("self-signed")),
        Peer::WrongHost => Some(certs.server_config("wrong-host")),
        Peer::Expired => Some(certs.server_config("expired")),
        _ => None,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let answers_models = endpoint == Endpoint::ModelChat;
    let counter = sent.clone();
    let task = runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        // Aborting the accept loop drops the set, which aborts every connection.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let counter = counter.clone();
            let tls = tls.clone();
            connections.spawn(async move {
                match tls {
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        // Doctor must refuse the certificate; if it does not, it gets healthy
                        // answers and the check passes, which the test reports.
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            serve_healthy(stream, &counter).await;
                        }
                    }
                    None => serve(tcp, peer, answers_models, &counter).await,
                }
            });
            while connections.try_join_next().is_some() {}
        }
    });
    RunningPeer {
        port,
        sent,
        task: Some(task),
        _held: None,
    }
}

/// A listener whose accept queue is full and never drained: new connections stay half-open
/// (Linux drops their SYN) until the client gives up.
fn never_accepting_peer(sent: Arc<AtomicU64>) -> RunningPeer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Listening again only changes the backlog: the smallest queue there is.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => fillers.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("filling the accept queue: {e}"),
        }
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    RunningPeer {
        port: addr.port(),
        sent,
        task: None,
        _held: Some((listener, fillers)),
    }
}

/// Reads up to the end of the request head; the request's path.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&byte[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace().nth(1).map(str::to_string)
}

/// What a healthy GitLab, gateway or model server answers at `path`.
fn healthy_body(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/monitoring/healthz" | "/-/readiness" => r#"{"status":"ok"}"#.into(),
        "/api/v4/metadata" => {
            r#"{"version":"18.1.1-ee","revision":"abc","enterprise":true}"#.into()
        }
        "/api/v4/license" => r#"{"plan":"ultimate","expired":false}"#.into(),
        "/v1/models" => r#"{"object":"list","data":[{"id":"codestral","object":"model"}]}"#.into(),
        _ => serde_json::json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "return a + b"}, "finish_reason": "stop"}],
        })
        .to_string(),
    }
}

fn http_200(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn write_counted<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    sent: &AtomicU64,
) -> bool {
    let ok = stream.write_all(bytes).await.is_ok();
    if ok {
        sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
    ok
}

async fn serve_healthy<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, sent: &AtomicU64) {
    if let Some(path) = read_head(&mut stream).await {
        write_counted(&mut stream, &http_200(&healthy_body(&path)), sent).await;
        let _ = stream.shutdown().await;
    }
}

/// Writes `bytes` one a second; then, forever, `filler` one a second.
async fn trickle<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    filler: u8,
    sent: &AtomicU64,
) {
    for byte in bytes.iter().copied().chain(std::iter::repeat(filler)) {
        if !write_counted(stream, &[byte], sent).await || stream.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Writes `block` again and again until `total` bytes are out or the client hangs up.
async fn flood<S: AsyncWrite + Unpin>(stream: &mut S, block: &[u8], total: u64, sent: &AtomicU64) {
    let mut written = 0u64;
    while written < total {
        if !write_counted(stream, block, sent).await {
            return;
        }
        written += block.len() as u64;
    }
}

/// `len` bytes of a JSON list that never closes.
fn json_filler(len: usize) -> Vec<u8> {
    let item = br#"{"id":"model","object":"model"},"#;
    item.iter().copied().cycle().take(len).collect()
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: Peer,
    answers_models: bool,
    sent: &AtomicU64,
) {
    if peer == Peer::TlsSilent {
        let mut hello = [0u8; 4096];
        let _ = stream.read(&mut hello).await;
        return std::future::pending().await;
    }
    if peer == Peer::PlainHttp || peer == Peer::Garbage {
        // The ClientHello, or whatever comes first.
        let mut hello = [0u8; 4096];
        let _ = stream.read(&mut hello).await;
        let answer = if peer == Peer::PlainHttp {
            let body = "400 Bad Request: this is a plain HTTP server\n";
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        } else {
            pseudo_random_bytes(4096)
        };
        write_counted(&mut stream, &answer, sent).await;
        let _ = stream.shutdown().await;
        return;
    }
    let Some(path) = read_head(&mut stream).await else {
        return;
    };
    if answers_models && path.ends_with("/v1/models") {
        write_counted(&mut stream, &http_200(&healthy_body(&path)), sent).await;
        let _ = stream.shutdown().await;
        return;
    }
    match peer {
        Peer::Silent => std::future::pending::<()>().await,
        Peer::TrickledHead => {
            trickle(&mut stream, b"HTTP/1.1 200 OK\r\nx-trickle: ", b'a', sent).await;
        }
        Peer::TrickledBody => {
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n";
            if write_counted(&mut stream, head, sent).await {
                trickle(&mut stream, b"{\"data\":[", b' ', sent).await;
            }
        }
        Peer::EndlessBody => {
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            let data = json_filler(64 * 1024);
            let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
            chunk.extend_from_slice(&data);
            chunk.extend_from_slice(b"\r\n");
            if write_counted(&mut stream, head, sent).await
                && write_counted(&mut stream, b"9\r\n{\"data\":[\r\n", sent).await
            {
                flood(&mut stream, &chunk, ENDLESS_BODY_BYTES, sent).await;
            }
        }
        Peer::TenGbLength => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {TEN_GB}\r\n\r\n"
            );
            if write_counted(&mut stream, head.as_bytes(), sent).await {
                flood(&mut stream, &json_filler(64 * 1024), TEN_GB, sent).await;
            }
        }
        Peer::HugeHead => {
            if write_counted(&mut stream, b"HTTP/1.1 200 OK\r\n", sent).await {
                let line = format!("x-padding: {}\r\n", "a".repeat(1000));
                let block = line.repeat(64);
                flood(&mut stream, block.as_bytes(), ENDLESS_BODY_BYTES, sent).await;
            }
        }
        _ => unreachable!("{peer:?} is served elsewhere"),
    }
}

fn pseudo_random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running doctor

struct DoctorRun {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// Peak resident set size, from the kernel's rusage of the finished process.
    max_rss_kb: i64,
}

/// Runs the real binary in a private HOME, reads its peak RSS while it runs, reaps it with
/// `wait4`, and kills it if it outlives `RUN_LIMIT` by far (the test then fails on its elapsed
/// time).
fn run_doctor(args: &[String], ca_cert: Option<&Path>) -> DoctorRun {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = support::duo_command(home.path());
    cmd.args(["--color", "never"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ca) = ca_cert {
        cmd.arg("--ca-cert").arg(ca);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("run duo-selfhost");
    let pid = child.id() as libc::pid_t;
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out_pipe.read_to_string(&mut text);
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err_pipe.read_to_string(&mut text);
        text
    });
    let kill_at = start + RUN_LIMIT * 4;
    let mut status: libc::c_int = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut own_peak_kb = None;
    loop {
        if let Some(kb) = own_peak_rss_kb(pid) {
            own_peak_kb = Some(own_peak_kb.unwrap_or(0).max(kb));
        }
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break;
        }
        if Instant::now() > kill_at {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = start.elapsed();
    // Reaped above: the Child must not be waited on again.
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    DoctorRun {
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        elapsed,
        // wait4's figure is the fallback for a run too short to be read even once.
        max_rss_kb: own_peak_kb.unwrap_or(usage.ru_maxrss),
    }
}

/// The child's own peak resident memory so far (`VmHWM`), once it runs duo-selfhost. wait4's
/// `ru_maxrss` is not doctor's alone: a child spawned with vfork takes its parent's high-water
/// mark at exec, and the parent is this test process, with every other test of the binary in it.
fn own_peak_rss_kb(pid: libc::pid_t) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    if field("Name:")? != "duo-selfhost" {
        return None;
    }
    field("VmHWM:")?.trim_end_matches("kB").trim().parse().ok()
}

/// One row of the printed table: a check aimed at a peer.
struct Row {
    peer: Peer,
    endpoint: Endpoint,
    check: String,
    status: String,
    message: String,
    elapsed: Duration,
    code: i32,
    max_rss_kb: i64,
    peer_sent: u64,
}

/// Every way the run broke doctor's promise.
fn judge(
    peer: Peer,
    endpoint: Endpoint,
    base: &str,
    checks: &[&str],
    run: &DoctorRun,
    rows: &mut Vec<Row>,
    peer_sent: u64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let label = format!("{} x {}", peer.name(), endpoint.name());
    if run.code != 1 {
        problems.push(format!("{label}: exit code {} (expected 1)", run.code));
    }
    if run.elapsed > RUN_LIMIT {
        problems.push(format!(
            "{label}: took {:?}, more than {:?}",
            run.elapsed, RUN_LIMIT
        ));
    }
    if run.max_rss_kb > RSS_LIMIT_KB {
        problems.push(format!(
            "{label}: peak RSS {} MB, more than {} MB",
            run.max_rss_kb / 1024,
            RSS_LIMIT_KB / 1024
        ));
    }
    if run.stderr.contains("panicked") {
        problems.push(format!("{label}: a panic on stderr:\n{}", run.stderr));
    }
    let Ok(doc) = serde_json::from_str::<Value>(&run.stdout) else {
        problems.push(format!(
            "{label}: stdout is not one JSON document:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        ));
        return problems;
    };
    let results = doc["checks"].as_array().cloned().unwrap_or_default();
    for check in checks {
        let Some(result) = results.iter().find(|r| r["id"] == *check) else {
            problems.push(format!("{label}: no result for {check}"));
            continue;
        };
        let status = result["status"].as_str().unwrap_or_default().to_string();
        let message = result["message"].as_str().unwrap_or_default().to_string();
        // gateway.tls judges a certificate only; without one (an http URL, a handshake that
        // never ends) it leaves the failure to gateway.healthz.
        let expected = if *check == "gateway.tls" && peer.cause() != Cause::Tls {
            "skip"
        } else {
            "fail"
        };
        if status != expected {
            problems.push(format!(
                "{label}: {check} is {status} (expected {expected}): {message}"
            ));
        } else if expected == "fail" && !peer.cause().named_in(&message) {
            problems.push(format!(
                "{label}: {check}'s message does not name the cause ({:?}): {message}",
                peer.cause()
            ));
        } else if expected == "fail" && result["hint"].as_str().unwrap_or_default().is_empty() {
            problems.push(format!("{label}: {check} fails without a hint"));
        }
        rows.push(Row {
            peer,
            endpoint,
            check: check.to_string(),
            status,
            // The port changes from run to run; the table reads better without it.
            message: message.replace(base, "<peer>"),
            elapsed: run.elapsed,
            code: run.code,
            max_rss_kb: run.max_rss_kb,
            peer_sent,
        });
    }
    problems
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<16} {:<11} {:<17} {:<6} {:>4} {:>8} {:>7} {:>10}  message",
        "peer", "endpoint", "check", "status", "exit", "elapsed", "max RSS", "peer sent"
    );
    for row in rows {
        println!(
            "{:<16} {:<11} {:<17} {:<6} {:>4} {:>7.2}s {:>5} MB {:>10}  {}",
            row.peer.name(),
            row.endpoint.name(),
            row.check,
            row.status,
            row.code,
            row.elapsed.as_secs_f64(),
            row.max_rss_kb / 1024,
            human_bytes(row.peer_sent),
            row.message,
        );
    }
}

#[test]
fn every_hostile_peer_fails_every_endpoint_within_the_budget() {
    let certs = Certificates::make();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut highest_rss = 0;
    let mut runs = 0;
    for peer in PEERS {
        for endpoint in ENDPOINTS {
            // The chat variant needs a peer that reads requests to answer /v1/models well.
            if endpoint == Endpoint::ModelChat && !peer.reads_requests() {
                continue;
            }
            let running = start_peer(&runtime, peer, endpoint, &certs);
            let scheme = if peer.https() { "https" } else { "http" };
            let base = format!("{scheme}://127.0.0.1:{}", running.port);
            let (args, checks) = endpoint.doctor_args(&base);
            let ca = matches!(peer, Peer::WrongHost | Peer::Expired).then(|| certs.ca());
            let run = run_doctor(&args, ca.as_deref());
            let sent = running.sent.load(Ordering::Relaxed);
            drop(running);
            runs += 1;
            slowest = slowest.max(run.elapsed);
            highest_rss = highest_rss.max(run.max_rss_kb);
            problems.extend(judge(peer, endpoint, &base, &checks, &run, &mut rows, sent));
        }
    }
    print_table(&rows);
    println!(
        "{runs} doctor runs, {} checks aimed at hostile peers; slowest run {:.2}s (limit {:.1}s = --timeout {CHECK_TIMEOUT_SECS} + 1.5 s margin + 1 s start-up); highest peak RSS {} MB (limit {} MB)",
        rows.len(),
        slowest.as_secs_f64(),
        RUN_LIMIT.as_secs_f64(),
        highest_rss / 1024,
        RSS_LIMIT_KB / 1024,
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
