//! Host names and addresses: the one rule for "only this machine can reach it".

use std::net::IpAddr;

/// `localhost`, a `*.localhost` name, 127.0.0.0/8, ::1 or ::ffff:127.x.y.z. Takes a bare host
/// or a URL's host (`[::1]`, a trailing dot).
pub fn is_loopback_host(host: &str) -> bool {
    let host = bare(host);
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || ip_of(host).is_some_and(|ip| ip.is_loopback())
}

/// A loopback host, or the unspecified address (0.0.0.0, ::), which a client reaches as this
/// machine: a URL with either works on one host only.
pub fn is_local_only_host(host: &str) -> bool {
    is_loopback_host(host) || ip_of(bare(host)).is_some_and(|ip| ip.is_unspecified())
}

/// `host:port` or `[v6]:port` without the port, then as [`is_loopback_host`].
pub fn is_loopback_host_port(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    is_loopback_host(host)
}

fn bare(host: &str) -> &str {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
}

/// The address, with an IPv4-mapped IPv6 address as its IPv4 one.
fn ip_of(host: &str) -> Option<IpAddr> {
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_local_only_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "gw.localhost",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
            "localhost.",
        ] {
            assert!(is_loopback_host(host), "{host}");
            assert!(is_local_only_host(host), "{host}");
        }
        for host in ["0.0.0.0", "::", "[::]", "::ffff:0.0.0.0"] {
            assert!(!is_loopback_host(host), "{host}");
            assert!(is_local_only_host(host), "{host}");
        }
        for host in [
            "gitlab.example.com",
            "10.0.0.5",
            "::ffff:10.0.0.5",
            "localhost.example.com",
        ] {
            assert!(!is_local_only_host(host), "{host}");
        }
        assert!(is_loopback_host_port("127.0.0.1:5000"));
        assert!(is_loopback_host_port("[::1]:5000"));
        assert!(is_loopback_host_port("localhost"));
        assert!(!is_loopback_host_port("registry.example.com:5000"));
    }
}
