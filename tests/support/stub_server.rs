//! A tiny HTTP/1.1 server on 127.0.0.1 for doctor's tests: each stand-in (a model server, a
//! gateway, something broken) is a function from the request to a reply. Raw sockets, so a
//! test can also answer garbage or nothing at all.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub enum Reply {
    Json(u16, String),
    Text(u16, String),
    /// Bytes written as they are, not HTTP.
    Raw(Vec<u8>),
    /// Keep the connection open and never answer: a black hole.
    Hang,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct StubServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl StubServer {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, &*handler, &seen));
            }
        });
        StubServer { port, requests }
    }

    /// A socket that accepts connections and never reads or answers.
    pub fn black_hole() -> Self {
        StubServer::start(|_| Reply::Hang)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let reply = handler(&request);
    seen.lock().unwrap().push(request);
    let mut stream = stream;
    let bytes = match reply {
        Reply::Hang => {
            std::thread::sleep(Duration::from_secs(300));
            return;
        }
        Reply::Raw(bytes) => bytes,
        Reply::Json(status, body) => http_response(status, "application/json", &body),
        Reply::Text(status, body) => http_response(status, "text/plain", &body),
    };
    let _ = stream.write_all(&bytes);
    let _ = stream.flush();
}

fn http_response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Stub\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An OpenAI-compatible model server serving `served` that answers every chat with `reply`.
pub fn openai_model(served: &'static str, reply: &'static str) -> StubServer {
    StubServer::start(move |req| {
        match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/models") => Reply::Json(
            200,
            format!(r#"{{"object":"list","data":[{{"id":"{served}","object":"model"}}]}}"#),
        ),
        ("POST", "/v1/chat/completions") => Reply::Json(
            200,
            serde_json::json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            })
            .to_string(),
        ),
        _ => Reply::Json(404, r#"{"detail":"Not Found"}"#.into()),
    }
    })
}

/// An AI Gateway stand-in answering healthz with `status`.
pub fn gateway(status: u16) -> StubServer {
    StubServer::start(move |req| match req.path.as_str() {
        "/monitoring/healthz" if status == 200 => Reply::Json(200, r#"{"status":"ok"}"#.into()),
        "/monitoring/healthz" => Reply::Json(status, r#"{"status":"error"}"#.into()),
        _ => Reply::Json(
            401,
            r#"{"error":"No authorization header presented"}"#.into(),
        ),
    })
}
