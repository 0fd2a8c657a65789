//! The address a daemon tells others to reach it at, when it listens on every interface.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// This host's address as its own name resolves (`/etc/hosts`, then DNS): the first
/// non-loopback address, IPv4 first. In a container that is its address on the container
/// network, which is what other containers and the host use to reach it.
pub fn host_ip() -> Option<IpAddr> {
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    let addrs: Vec<IpAddr> = (name.as_str(), 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    pick(&addrs)
}

fn pick(addrs: &[IpAddr]) -> Option<IpAddr> {
    let usable = |a: &&IpAddr| !a.is_loopback() && !a.is_unspecified();
    addrs.iter().filter(usable).find(|a| a.is_ipv4()).or_else(|| addrs.iter().find(usable)).copied()
}

/// The local address this host uses to reach `addr` (`host:port`): the route's source, found
/// by connecting a UDP socket (which sends nothing). On a container network that is the
/// container's address there, also after the container was reconnected with a new one.
pub fn route_ip(addr: &str) -> Option<IpAddr> {
    let target = addr.to_socket_addrs().ok()?.next()?;
    let local: SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock = std::net::UdpSocket::bind(local).ok()?;
    sock.connect(target).ok()?;
    Some(sock.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// The address to advertise for a server bound to `bound`: its own IP unless that is the
/// wildcard (`0.0.0.0`, `::`), then [`host_ip`], then loopback.
pub fn advertised_ip(bound: SocketAddr) -> IpAddr {
    if !bound.ip().is_unspecified() {
        return bound.ip();
    }
    host_ip().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// A local address to connect to a server configured to bind `addr` (`0.0.0.0:9000` ->
/// `127.0.0.1:9000`); other addresses unchanged.
pub fn connectable(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => SocketAddr::new(IpAddr::from([127, 0, 0, 1]), a.port()).to_string(),
        _ => addr.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_ipv4_over_ipv6_and_never_loopback() {
        let v4: IpAddr = "172.18.0.5".parse().unwrap();
        let v6: IpAddr = "fd00::5".parse().unwrap();
        let lo: IpAddr = "127.0.1.1".parse().unwrap();
        assert_eq!(pick(&[lo, v6, v4]), Some(v4));
        assert_eq!(pick(&[lo, v6]), Some(v6));
        assert_eq!(pick(&[lo]), None);
    }

    #[test]
    fn advertised_ip_keeps_a_specific_bind_address() {
        assert_eq!(advertised_ip("10.1.2.3:50060".parse().unwrap()), "10.1.2.3".parse::<IpAddr>().unwrap());
        assert!(!advertised_ip("0.0.0.0:50060".parse().unwrap()).is_unspecified());
    }

    #[test]
    fn route_ip_to_loopback_is_loopback() {
        assert_eq!(route_ip("127.0.0.1:9"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(route_ip("no-such-host.invalid:9"), None);
    }

    #[test]
    fn connectable_turns_the_wildcard_into_loopback() {
        assert_eq!(connectable("0.0.0.0:9000"), "127.0.0.1:9000");
        assert_eq!(connectable("namenode:9000"), "namenode:9000");
        assert_eq!(connectable("10.0.0.1:9000"), "10.0.0.1:9000");
    }
}
