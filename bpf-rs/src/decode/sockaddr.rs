//! Socket addresses as the kernel stored them.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::escape::quote;

/// A socket address as the kernel stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    Inet {
        addr: Ipv4Addr,
        port: u16,
    },
    Inet6 {
        addr: Ipv6Addr,
        port: u16,
        flowinfo: u32,
        scope_id: u32,
    },
    /// `path` is empty for unnamed sockets; abstract names start with `@`.
    Unix {
        path: String,
        abstract_name: bool,
    },
    Netlink {
        pid: u32,
        groups: u32,
    },
    Other {
        family: u16,
        bytes: Vec<u8>,
    },
}

impl SockAddr {
    #[must_use]
    pub fn parse(b: &[u8]) -> Option<Self> {
        let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
        Some(match family {
            2 if b.len() >= 8 => Self::Inet {
                port: u16::from_be_bytes([b[2], b[3]]),
                addr: Ipv4Addr::new(b[4], b[5], b[6], b[7]),
            },
            10 if b.len() >= 24 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[8..24]);
                Self::Inet6 {
                    port: u16::from_be_bytes([b[2], b[3]]),
                    flowinfo: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    addr: Ipv6Addr::from(a),
                    scope_id: b
                        .get(24..28)
                        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]])),
                }
            }
            1 => {
                let p = &b[2..];
                if p.first() == Some(&0) && p.len() > 1 {
                    Self::Unix {
                        path: format!("@{}", String::from_utf8_lossy(&p[1..])),
                        abstract_name: true,
                    }
                } else {
                    let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                    Self::Unix {
                        path: String::from_utf8_lossy(&p[..end]).into_owned(),
                        abstract_name: false,
                    }
                }
            }
            16 if b.len() >= 12 => Self::Netlink {
                pid: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                groups: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            },
            _ => Self::Other {
                family,
                bytes: b[2..].to_vec(),
            },
        })
    }

    #[must_use]
    pub fn family_name(&self) -> String {
        match self {
            Self::Inet { .. } => "AF_INET".into(),
            Self::Inet6 { .. } => "AF_INET6".into(),
            Self::Unix { .. } => "AF_UNIX".into(),
            Self::Netlink { .. } => "AF_NETLINK".into(),
            Self::Other { family, .. } => format!("{family}"),
        }
    }

    /// strace-like text: `{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}`.
    #[must_use]
    pub fn to_text(&self) -> String {
        match self {
            Self::Inet { addr, port } => format!(
                "{{sa_family=AF_INET, sin_port=htons({port}), sin_addr=inet_addr(\"{addr}\")}}"
            ),
            Self::Inet6 {
                addr,
                port,
                flowinfo,
                scope_id,
            } => format!(
                "{{sa_family=AF_INET6, sin6_port=htons({port}), sin6_flowinfo=htonl({flowinfo}), \
                 inet_pton(AF_INET6, \"{addr}\", &sin6_addr), sin6_scope_id={scope_id}}}"
            ),
            Self::Unix { path, .. } => {
                format!(
                    "{{sa_family=AF_UNIX, sun_path={}}}",
                    quote(path.as_bytes(), false)
                )
            }
            Self::Netlink { pid, groups } => {
                format!("{{sa_family=AF_NETLINK, nl_pid={pid}, nl_groups={groups:08x}}}")
            }
            Self::Other { family, .. } => format!("{{sa_family={family}, ...}}"),
        }
    }
}
