//! Flags of calls that create special file descriptors (eventfd, timerfd,
//! signalfd, memfd, epoll, inotify) and epoll operations.

/// signalfd4 flags.
pub const SFD_FLAGS: &[(u64, &str)] = &[(0o4000, "SFD_NONBLOCK"), (0o2000000, "SFD_CLOEXEC")];
pub const IN_INIT: &[(u64, &str)] = &[(0o4000, "IN_NONBLOCK"), (0o2000000, "IN_CLOEXEC")];
pub const TFD_FLAGS: &[(u64, &str)] = &[
    (1, "TFD_TIMER_ABSTIME"),
    (2, "TFD_TIMER_CANCEL_ON_SET"),
    (0o4000, "TFD_NONBLOCK"),
    (0o2000000, "TFD_CLOEXEC"),
];
pub const EFD_FLAGS: &[(u64, &str)] = &[
    (1, "EFD_SEMAPHORE"),
    (0o4000, "EFD_NONBLOCK"),
    (0o2000000, "EFD_CLOEXEC"),
];
pub const MFD_FLAGS: &[(u64, &str)] = &[
    (1, "MFD_CLOEXEC"),
    (2, "MFD_ALLOW_SEALING"),
    (4, "MFD_HUGETLB"),
    (8, "MFD_NOEXEC_SEAL"),
    (16, "MFD_EXEC"),
];
pub const TIMER_FLAGS: &[(u64, &str)] = &[(1, "TIMER_ABSTIME")];

pub const EPOLL_OPS: &[(u64, &str)] = &[
    (1, "EPOLL_CTL_ADD"),
    (2, "EPOLL_CTL_DEL"),
    (3, "EPOLL_CTL_MOD"),
];

pub const EPOLL_CREATE: &[(u64, &str)] = &[(0o2000000, "EPOLL_CLOEXEC")];
