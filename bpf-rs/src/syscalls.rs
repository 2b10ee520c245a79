//! The x86_64 syscall table: number, name, class, group, return kind and
//! argument types, parsed from `data/syscalls_x86_64.tsv` (the one data file
//! the Python side also reads, through this module). Pure; no kernel access.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::abi::{self, ArgSpec, CaptureSpec};
pub use crate::decode::{ArgType, Captured, StructType};
use crate::error::Error;

const TABLE_TSV: &str = include_str!(concat!(env!("OUT_DIR"), "/syscalls_x86_64.tsv"));

/// How a syscall's return value reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetKind {
    Int,
    Fd,
    Pid,
    Size,
    Long,
    /// An address (brk, mmap): an error only in -4095..=-1.
    Ptr,
    /// Never returns (exit, exit_group, rt_sigreturn).
    NoReturn,
    Uint,
    Hex,
}

impl RetKind {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "int" => Self::Int,
            "fd" => Self::Fd,
            "pid" => Self::Pid,
            "size" => Self::Size,
            "long" => Self::Long,
            "ptr" => Self::Ptr,
            "noreturn" => Self::NoReturn,
            "uint" => Self::Uint,
            "hex" => Self::Hex,
            other => return Err(format!("unknown return kind `{other}`")),
        })
    }
}

/// One argument: its name and its type, parsed once when the table loads
/// (`buf_in(2)` -> a buffer captured with the length in argument 2).
#[derive(Clone, Debug)]
pub struct ArgDef {
    pub name: String,
    /// The type as the data file spells it, e.g. `buf_in(2)`.
    pub type_name: String,
    pub ty: ArgType,
}

#[derive(Clone, Debug)]
pub struct SyscallDef {
    pub nr: u32,
    pub name: String,
    pub class: String,
    pub group: String,
    pub ret: RetKind,
    /// Tracepoint event suffix (`sys_enter_<tp>`), `None` if there is none.
    pub tp: Option<String>,
    pub args: Vec<ArgDef>,
}

impl SyscallDef {
    /// The probe's capture spec for this syscall, from its argument types.
    #[must_use]
    pub fn capture_spec(&self) -> CaptureSpec {
        let mut spec = CaptureSpec {
            nargs: u8::try_from(self.args.len().min(abi::NARGS)).unwrap_or(6),
            ..CaptureSpec::default()
        };
        for (slot, arg) in spec.slots.iter_mut().zip(&self.args) {
            *slot = arg_spec(arg);
        }
        for s in spec.slots {
            if s.kind == abi::SPEC_NONE {
                continue;
            }
            spec.capflags |= if s.kind >= abi::SPEC_FIRST_EXIT {
                abi::CAPS_EXIT
            } else {
                abi::CAPS_ENTRY
            };
        }
        spec
    }

    /// True when a call must be seen at entry, not only at exit: it never
    /// returns (exit, exit_group), replaces the registers and memory its
    /// arguments are read from (execve, execveat, rt_sigreturn), returns in
    /// a new task too (the fork family: the child must not be recorded), or
    /// captures what the call may change before it returns (string arrays,
    /// in/out structs, message headers).
    #[must_use]
    pub fn needs_entry(&self) -> bool {
        const SPECIAL: &[&str] = &[
            "exit",
            "exit_group",
            "execve",
            "execveat",
            "rt_sigreturn",
            "clone",
            "clone3",
            "fork",
            "vfork",
        ];
        SPECIAL.contains(&self.name.as_str())
            || self.capture_spec().slots.iter().any(|s| {
                matches!(
                    s.kind,
                    abi::SPEC_STRV
                        | abi::SPEC_STRUCT_IN
                        | abi::SPEC_STRUCT_IN_LEN
                        | abi::SPEC_MSGHDR_NAME_IN
                )
            })
    }

    /// True when some argument is captured from user memory.
    #[must_use]
    pub fn captures(&self) -> bool {
        self.capture_spec()
            .slots
            .iter()
            .any(|s| s.kind != abi::SPEC_NONE)
    }
}

fn arg_spec(arg: &ArgDef) -> ArgSpec {
    let spec = |kind, len_arg, size| ArgSpec {
        kind,
        len_arg,
        size,
    };
    let size = |t: StructType| t.size().unwrap_or(64);
    let none = abi::NO_LEN_ARG;
    let ArgType::Capture(cap) = arg.ty else {
        return spec(abi::SPEC_NONE, none, 0);
    };
    match cap {
        Captured::Str => spec(abi::SPEC_STR, none, 0),
        Captured::Strv => spec(abi::SPEC_STRV, none, 0),
        Captured::StrOut => spec(abi::SPEC_STR_OUT, none, 0),
        Captured::BufIn { len_arg } => spec(abi::SPEC_BUF_IN, len_arg, 0),
        Captured::BufOut => spec(abi::SPEC_BUF_OUT, none, 0),
        Captured::MsghdrIn => spec(abi::SPEC_MSGHDR_NAME_IN, none, 0),
        Captured::MsghdrOut => spec(abi::SPEC_MSGHDR_NAME_OUT, none, 0),
        Captured::SockaddrIn { len_arg } => spec(abi::SPEC_SOCKADDR_IN, len_arg, 0),
        Captured::SockaddrOut { len_arg } => spec(abi::SPEC_SOCKADDR_OUT, len_arg, 0),
        Captured::StructIn(t) => spec(abi::SPEC_STRUCT_IN, none, size(t)),
        Captured::StructInLen(t, len_arg) => spec(abi::SPEC_STRUCT_IN_LEN, len_arg, size(t)),
        Captured::StructOut(t) => spec(abi::SPEC_STRUCT_OUT, none, size(t)),
        Captured::StructOutLenptr(t, len_arg) => {
            spec(abi::SPEC_STRUCT_OUT_LENPTR, len_arg, size(t))
        }
        Captured::ArrayOut(t) => spec(abi::SPEC_ARRAY_OUT, none, size(t)),
    }
}

/// The whole table, indexed by number and by name.
#[derive(Debug)]
pub struct SyscallTable {
    by_nr: Vec<Option<SyscallDef>>,
    by_name: HashMap<String, u32>,
}

fn parse_args(field: &str, syscall: &str) -> Result<Vec<ArgDef>, String> {
    if field == "-" || field.is_empty() {
        return Ok(Vec::new());
    }
    field
        .split(';')
        .map(|a| {
            let (name, ty) = a
                .split_once(':')
                .ok_or_else(|| format!("argument `{a}` is not name:type"))?;
            let (base, params) = match ty.split_once('(') {
                Some((t, rest)) => {
                    let inner = rest
                        .strip_suffix(')')
                        .ok_or_else(|| format!("argument `{a}`: unclosed `(`"))?;
                    (t, inner.split(',').map(str::trim).collect())
                }
                None => (ty, Vec::new()),
            };
            Ok(ArgDef {
                name: name.trim().to_owned(),
                type_name: ty.trim().to_owned(),
                ty: ArgType::parse(base.trim(), &params, syscall),
            })
        })
        .collect()
}

impl SyscallTable {
    /// The table compiled into this library.
    ///
    /// # Panics
    /// Only if the embedded data file is malformed, which the unit tests rule out.
    pub fn get() -> &'static Self {
        static TABLE: OnceLock<SyscallTable> = OnceLock::new();
        TABLE.get_or_init(|| Self::parse(TABLE_TSV).expect("embedded syscall table parses"))
    }

    /// The raw data file, for the Python side.
    #[must_use]
    pub fn source_text() -> &'static str {
        TABLE_TSV
    }

    /// Parses the TSV format documented in the data file's header.
    ///
    /// # Errors
    /// A line-numbered message for the first malformed line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut by_nr: Vec<Option<SyscallDef>> = vec![None; abi::MAX_SYSCALLS as usize];
        let mut by_name = HashMap::new();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let err = |m: String| format!("line {}: {m}", lineno + 1);
            if cols.len() != 7 {
                return Err(err(format!("{} columns, expected 7", cols.len())));
            }
            let nr: u32 = cols[0]
                .parse()
                .map_err(|_| err(format!("bad number `{}`", cols[0])))?;
            if nr >= abi::MAX_SYSCALLS {
                return Err(err(format!("number {nr} out of range")));
            }
            let def = SyscallDef {
                nr,
                name: cols[1].to_owned(),
                class: cols[2].to_owned(),
                group: cols[3].to_owned(),
                ret: RetKind::parse(cols[4]).map_err(err)?,
                tp: (cols[5] != "-").then(|| cols[5].to_owned()),
                args: parse_args(cols[6], cols[1]).map_err(err)?,
            };
            if by_name.insert(def.name.clone(), nr).is_some() {
                return Err(err(format!("duplicate name `{}`", def.name)));
            }
            let slot = &mut by_nr[nr as usize];
            if slot.is_some() {
                return Err(err(format!("duplicate number {nr}")));
            }
            *slot = Some(def);
        }
        Ok(Self { by_nr, by_name })
    }

    #[must_use]
    pub fn by_nr(&self, nr: u32) -> Option<&SyscallDef> {
        self.by_nr.get(nr as usize).and_then(Option::as_ref)
    }

    /// Looks a name up, with or without the `sys_` prefix.
    ///
    /// # Errors
    /// [`Error::UnknownSyscall`] with up to three close matches.
    pub fn by_name(&self, name: &str) -> Result<&SyscallDef, Error> {
        let bare = name.trim();
        let bare = bare.strip_prefix("sys_").unwrap_or(bare);
        self.by_name
            .get(bare)
            .and_then(|&nr| self.by_nr(nr))
            .ok_or_else(|| Error::UnknownSyscall {
                name: name.to_owned(),
                suggestions: self.suggest(bare),
            })
    }

    /// Resolves a name or a decimal number.
    ///
    /// # Errors
    /// [`Error::UnknownSyscall`] when neither matches.
    pub fn resolve(&self, name_or_nr: &str) -> Result<&SyscallDef, Error> {
        if let Ok(nr) = name_or_nr.trim().parse::<u32>() {
            return self.by_nr(nr).ok_or_else(|| Error::UnknownSyscall {
                name: name_or_nr.to_owned(),
                suggestions: Vec::new(),
            });
        }
        self.by_name(name_or_nr)
    }

    /// Every syscall, by number.
    pub fn iter(&self) -> impl Iterator<Item = &SyscallDef> {
        self.by_nr.iter().flatten()
    }

    fn suggest(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(usize, &str)> = self
            .by_name
            .keys()
            .filter_map(|k| {
                let d = levenshtein(name, k);
                let close = d <= 2.max(name.len() / 4) || (name.len() >= 3 && k.contains(name));
                close.then_some((d, k.as_str()))
            })
            .collect();
        scored.sort_unstable();
        scored
            .into_iter()
            .take(3)
            .map(|(_, k)| k.to_owned())
            .collect()
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Render;

    #[test]
    fn embedded_table_parses_and_has_core_calls() {
        let t = SyscallTable::get();
        assert_eq!(t.by_name("openat").unwrap().nr, 257);
        assert_eq!(t.by_name("sys_openat").unwrap().nr, 257);
        assert_eq!(t.by_nr(59).unwrap().name, "execve");
        assert_eq!(t.by_name("exit_group").unwrap().ret, RetKind::NoReturn);
        assert_eq!(t.resolve("39").unwrap().name, "getpid");
    }

    #[test]
    fn unknown_name_suggests_close_matches() {
        let err = SyscallTable::get().by_name("opneat").unwrap_err();
        match err {
            Error::UnknownSyscall { suggestions, .. } => {
                assert!(suggestions.iter().any(|s| s == "openat"), "{suggestions:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn capture_specs_follow_argument_types() {
        let t = SyscallTable::get();
        let openat = t.by_name("openat").unwrap().capture_spec();
        assert_eq!(openat.nargs, 4);
        assert_eq!(openat.slots[1].kind, abi::SPEC_STR);
        assert_eq!(openat.slots[0].kind, abi::SPEC_NONE);
        let connect = t.by_name("connect").unwrap().capture_spec();
        assert_eq!(connect.slots[1].kind, abi::SPEC_SOCKADDR_IN);
        assert_eq!(connect.slots[1].len_arg, 2);
        let execve = t.by_name("execve").unwrap().capture_spec();
        assert_eq!(execve.slots[0].kind, abi::SPEC_STR);
        assert_eq!(execve.slots[1].kind, abi::SPEC_STRV);
        assert_eq!(t.by_name("getppid").unwrap().capture_spec().nargs, 0);
        let setrlimit = t.by_name("setrlimit").unwrap().capture_spec();
        assert_eq!(setrlimit.slots[1].kind, abi::SPEC_STRUCT_IN);
        assert_eq!(setrlimit.slots[1].size, 16);
        let setsockopt = t.by_name("setsockopt").unwrap().capture_spec();
        assert_eq!(setsockopt.slots[3].kind, abi::SPEC_STRUCT_IN_LEN);
        assert_eq!(
            (setsockopt.slots[3].len_arg, setsockopt.slots[3].size),
            (4, 64)
        );
    }

    #[test]
    fn parse_rejects_malformed_lines() {
        assert!(SyscallTable::parse("0\tread\tFileSystem\tReadWrite\tsize\tread").is_err());
        assert!(SyscallTable::parse("x\tread\tA\tB\tsize\tread\t-").is_err());
        assert!(SyscallTable::parse("0\tread\tA\tB\tbogus\tread\t-").is_err());
        assert!(SyscallTable::parse("0\tread\tA\tB\tint\tread\tfd:int;buf:buf_in(2").is_err());
        let dup = "0\tread\tA\tB\tint\tread\t-\n0\twrite\tA\tB\tint\twrite\t-";
        assert!(SyscallTable::parse(dup).is_err());
    }

    #[test]
    fn argument_types_are_parsed_at_load() {
        let t = SyscallTable::get();
        let openat = t.by_name("openat").unwrap();
        assert!(matches!(openat.args[0].ty, ArgType::Scalar(Render::Dirfd)));
        assert!(matches!(openat.args[1].ty, ArgType::Capture(Captured::Str)));
        assert!(matches!(
            openat.args[2].ty,
            ArgType::Scalar(Render::OpenFlags)
        ));
        let connect = t.by_name("connect").unwrap();
        assert_eq!(connect.args[1].type_name, "sockaddr_in(2)");
        assert!(matches!(
            connect.args[1].ty,
            ArgType::Capture(Captured::SockaddrIn { len_arg: 2 })
        ));
        // dup3's flags carry no access mode: plain bits, not open flags.
        let dup3 = t.by_name("dup3").unwrap();
        assert!(matches!(
            dup3.args[2].ty,
            ArgType::Scalar(Render::Bits { .. })
        ));
        // Types the decoder does not know render as hex.
        assert!(matches!(
            ArgType::parse("splice_flags", &[], "splice"),
            ArgType::Scalar(Render::Hex)
        ));
    }

    #[test]
    fn levenshtein_basics() {
        assert_eq!(levenshtein("openat", "openat"), 0);
        assert_eq!(levenshtein("opneat", "openat"), 2);
        assert_eq!(levenshtein("", "abc"), 3);
    }
}
