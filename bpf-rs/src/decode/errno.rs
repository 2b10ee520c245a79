//! Errno numbers and names (from `data/errno.tsv`), and which return values
//! are errors.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::syscalls::RetKind;

const ERRNO_TSV: &str = include_str!(concat!(env!("OUT_DIR"), "/errno.tsv"));

/// Errno number -> name, from `data/errno.tsv`.
#[must_use]
pub fn errno_name(n: i64) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<i64, &'static str>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        ERRNO_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut c = l.split('\t');
                Some((c.next()?.trim().parse().ok()?, c.next()?.trim()))
            })
            .collect()
    });
    t.get(&n).copied()
}

/// Every line of `data/errno.tsv`: (number, name, aliases).
pub fn errno_entries() -> impl Iterator<Item = (i64, &'static str, Vec<&'static str>)> {
    ERRNO_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut c = l.split('\t');
            let n = c.next()?.trim().parse().ok()?;
            let name = c.next()?.trim();
            let aliases = c.nth(1).unwrap_or("-").trim();
            let aliases = if aliases == "-" {
                Vec::new()
            } else {
                aliases.split(',').map(str::trim).collect()
            };
            Some((n, name, aliases))
        })
}

/// Errno name -> number.
#[must_use]
pub fn errno_number(name: &str) -> Option<i64> {
    ERRNO_TSV
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut c = l.split('\t');
            let n = c.next()?.trim().parse().ok()?;
            let nm = c.next()?.trim();
            let aliases = c.nth(1).unwrap_or("-");
            (nm == name || aliases.split(',').any(|a| a.trim() == name)).then_some(n)
        })
}

/// The errno of a return value, if it is an error for this kind of call.
#[must_use]
pub fn errno_of(ret: i64, kind: Option<RetKind>) -> Option<i64> {
    if kind == Some(RetKind::NoReturn) {
        return None;
    }
    // Kernel errors are -1..=-4095 for every return kind, including addresses.
    (-4095..=-1).contains(&ret).then_some(-ret)
}
