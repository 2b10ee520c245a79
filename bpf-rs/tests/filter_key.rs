//! `SyscallEvent::filter_key`: the key a record was matched under, which the
//! reader's per-key delivered counts and the Hub's routing rely on.

use syshub_bpf::abi::{EVF_ANY_NS, EVF_RAW_HOOK, EVF_SCOPE, FilterKey, SyscallEvent};

fn record(flags: u16, pid_ns: u32, scope: u16) -> SyscallEvent {
    SyscallEvent {
        flags,
        pid_ns,
        scope,
        nr: 110,
        ..SyscallEvent::default()
    }
}

#[test]
fn namespace_key_is_the_records_pid_ns() {
    let key = record(0, 0xF000_0123, 0).filter_key();
    assert_eq!(
        key,
        FilterKey {
            pid_ns: 0xF000_0123,
            nr: 110
        }
    );
}

#[test]
fn namespace_key_ignores_the_tasks_scope_when_not_matched_by_it() {
    // In scope 7, but the scope had no filter for this nr: matched by pid_ns.
    let key = record(EVF_RAW_HOOK, 0xF000_0123, 7).filter_key();
    assert_eq!(
        key,
        FilterKey {
            pid_ns: 0xF000_0123,
            nr: 110
        }
    );
}

#[test]
fn scope_key_is_the_scope_id() {
    let key = record(EVF_SCOPE, 0xF000_0123, 7).filter_key();
    assert_eq!(key, FilterKey { pid_ns: 7, nr: 110 });
    let key = record(EVF_SCOPE | EVF_RAW_HOOK, 0xF000_0123, u16::MAX).filter_key();
    assert_eq!(
        key,
        FilterKey {
            pid_ns: 65535,
            nr: 110
        }
    );
}

#[test]
fn every_namespace_key_is_zero() {
    let key = record(EVF_ANY_NS, 0xF000_0123, 0).filter_key();
    assert_eq!(key, FilterKey { pid_ns: 0, nr: 110 });
}

#[test]
fn scope_header_field_sits_where_the_padding_was() {
    // The header stays 160 bytes: the scope id took the old u16 padding
    // after ncaptures.
    assert_eq!(size_of::<SyscallEvent>(), 160);
    assert_eq!(std::mem::offset_of!(SyscallEvent, scope), 54);
    assert_eq!(std::mem::offset_of!(SyscallEvent, cgroup_id), 56);
}
