//! A host port a container needs and something else holds: found before anything is
//! touched where it can be, and named with who holds it (another container, the engine itself,
//! something on the host) when the engine refuses a start. Nothing here changes a container.

use std::collections::HashMap;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;

use crate::error::Problem;

/// Who holds a host port a container could not publish.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PortHolder {
    /// Something on the host, or not known.
    Unknown,
    /// Another running container publishes it.
    Container(String),
    /// The engine has it allocated though no container publishes it: kept from a container it
    /// lost when it was killed while starting one (seen with dockerd 20.10; only restarting
    /// the engine frees it).
    EngineItself,
}

/// The engine says "port is already allocated" for ports it allocated itself (an OS-level
/// conflict reads "address already in use"): find which container, if any, has it.
async fn port_holder(docker: &Docker, name: &str, message: &str) -> PortHolder {
    let Some(port) = port_in(message).filter(|_| message.contains("already allocated")) else {
        return PortHolder::Unknown;
    };
    let filters = HashMap::from([("publish", vec![port.to_string()])]);
    let options = ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    match docker.list_containers(Some(options)).await {
        Ok(list) => list
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .find(|n| n != name)
            .map_or(PortHolder::EngineItself, PortHolder::Container),
        Err(_) => PortHolder::Unknown,
    }
}

pub(super) async fn start_failure(docker: &Docker, name: &str, message: &str) -> Problem {
    let holder = port_holder(docker, name, message).await;
    start_problem(name, message, &holder)
}

fn start_problem(name: &str, message: &str, holder: &PortHolder) -> Problem {
    if message.contains("already allocated") || message.contains("address already in use") {
        let port = port_in(message);
        let port_text = port
            .map(|p| format!("port {p}"))
            .unwrap_or_else(|| "a published port".into());
        let another_port =
            "or choose another host port (--gateway-port for the gateway's HTTP port)";
        return match holder {
            PortHolder::EngineItself => Problem::user(format!(
                "{port_text} is still allocated inside the Docker Engine, though no container publishes it, so {name} cannot publish it: {message}"
            ))
            .hint(
                "the engine kept it from a container it lost when it was killed midway; restart the engine \
                 (sudo systemctl restart docker, or stop dockerd and start it again), then run the same command again",
            ),
            PortHolder::Container(other) => Problem::user(format!(
                "{port_text} is already in use on this host by the container {other}, so {name} cannot publish it: {message}"
            ))
            .hint(format!(
                "stop it (docker stop {other}) and run the command again, {another_port}"
            )),
            PortHolder::Unknown => {
                let probe = port
                    .map(|p| format!("ss -ltnp 'sport = :{p}'"))
                    .unwrap_or_else(|| "ss -ltnp".into());
                Problem::user(format!(
                    "{port_text} is already in use on this host, so {name} cannot publish it: {message}"
                ))
                .hint(format!(
                    "stop what listens there (find it with {probe}) and run the command again, {another_port}"
                ))
            }
        };
    }
    Problem::user(format!("could not start the container {name}: {message}"))
}

/// Finds `:PORT` in an engine message such as `Bind for 0.0.0.0:5052 failed`.
fn port_in(message: &str) -> Option<u16> {
    let re = regex::Regex::new(r"(?:0\.0\.0\.0|\[::\]|[0-9.]+):(\d{1,5})").ok()?;
    re.captures(message)?.get(1)?.as_str().parse().ok()
}

/// Fails early, before pulling or stopping anything, when a host port the container publishes
/// is taken; `held` lists ports the container being replaced holds itself (freed by stopping it).
pub(super) fn check_ports_free(
    name: &str,
    body: &ContainerCreateBody,
    held: &[u16],
) -> Result<(), Problem> {
    let bindings = body
        .host_config
        .as_ref()
        .and_then(|h| h.port_bindings.clone())
        .unwrap_or_default();
    for binding in bindings.values().flatten().flatten() {
        let Some(port) = binding
            .host_port
            .as_deref()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| !held.contains(p))
        else {
            continue;
        };
        let ip = binding
            .host_ip
            .clone()
            .filter(|ip| !ip.is_empty())
            .unwrap_or_else(|| "0.0.0.0".into());
        if let Err(e) = std::net::TcpListener::bind((ip.as_str(), port)) {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                return Err(start_problem(
                    name,
                    &format!("listen tcp {ip}:{port}: bind: address already in use"),
                    &PortHolder::Unknown,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_conflicts_are_named_with_who_holds_the_port() {
        let message = "driver failed programming external connectivity on endpoint gw: Bind for 0.0.0.0:5052 failed: port is already allocated";
        let p = start_problem("gw", message, &PortHolder::Unknown);
        assert!(p.message.starts_with("port 5052 is already in use"));
        assert!(p.hint.unwrap().contains("--gateway-port"));
        let p = start_problem("gw", message, &PortHolder::Container("other".into()));
        assert!(p.message.contains("by the container other"));
        assert!(p.hint.unwrap().starts_with("stop it (docker stop other)"));
        let p = start_problem("gw", message, &PortHolder::EngineItself);
        assert!(p
            .message
            .contains("still allocated inside the Docker Engine"));
        assert!(p.hint.unwrap().contains("restart the engine"));
    }
}
