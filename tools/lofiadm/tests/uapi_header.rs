//! lofiadm's hand-written ABI mirror (src/uapi.rs) against the C header
//! include/uapi/linux/lofi.h: a C program built against the header prints
//! the structure's size and alignment, every field's offset and size and
//! every constant (sizes, limits, commands, states);
//! each line must equal the one computed from the Rust definitions.
//! Needs a C compiler (`cc`, or $CC).

use std::mem::{align_of, offset_of, size_of, size_of_val};
use std::path::Path;
use std::process::Command;

use lofiadm::uapi::{self, LofiIoctl, dkio, request};

macro_rules! field {
    ($f:ident) => {{
        let li = LofiIoctl::default();
        format!(
            "field {} {} {}",
            stringify!($f),
            offset_of!(LofiIoctl, $f),
            size_of_val(&li.$f)
        )
    }};
}

fn rust_lines() -> Vec<String> {
    let ctl_name = uapi::CTL_PATH.strip_prefix("/dev/").unwrap();
    let block_dir = uapi::BLOCK_DIR.strip_prefix("/dev/").unwrap();
    vec![
        format!("size lofi_ioctl {}", size_of::<LofiIoctl>()),
        format!("align lofi_ioctl {}", align_of::<LofiIoctl>()),
        field!(li_minor),
        field!(li_force),
        field!(li_cleanup),
        field!(li_readonly),
        field!(li_flags),
        field!(li_block_size),
        field!(li_offset),
        field!(li_sizelimit),
        field!(li_filename),
        field!(li_devpath),
        field!(li_algorithm),
        field!(li_reserved),
        format!("const LOFI_PATH_LEN {:#x}", uapi::PATH_LEN),
        format!("const LOFI_DEVPATH_LEN {:#x}", uapi::DEVPATH_LEN),
        format!("const LOFI_ALGORITHM_LEN {:#x}", uapi::ALGORITHM_LEN),
        format!("const LOFI_RESERVED_WORDS {:#x}", uapi::RESERVED_WORDS),
        format!("const LOFI_FLAG_DIRECT_IO {:#x}", uapi::FLAG_DIRECT_IO),
        format!("const LOFI_FLAG_LABELED {:#x}", uapi::FLAG_LABELED),
        format!("const LOFI_FLAGS_KNOWN {:#x}", uapi::FLAGS_KNOWN),
        format!(
            "const LOFI_BLOCK_SIZE_DEFAULT {:#x}",
            uapi::BLOCK_SIZE_DEFAULT
        ),
        format!("const LOFI_IOC_MAGIC {:#x}", uapi::IOC_MAGIC),
        format!(
            "const LOFI_MAX_FILES_DEFAULT {:#x}",
            uapi::MAX_FILES_DEFAULT
        ),
        format!("const LOFI_MAP_FILE {:#x}", request::MAP_FILE),
        format!("const LOFI_MAP_FILE_MINOR {:#x}", request::MAP_FILE_MINOR),
        format!("const LOFI_UNMAP_FILE {:#x}", request::UNMAP_FILE),
        format!(
            "const LOFI_UNMAP_FILE_MINOR {:#x}",
            request::UNMAP_FILE_MINOR
        ),
        format!("const LOFI_GET_FILENAME {:#x}", request::GET_FILENAME),
        format!("const LOFI_GET_MINOR {:#x}", request::GET_MINOR),
        format!("const LOFI_GET_MAXMINOR {:#x}", request::GET_MAXMINOR),
        format!(
            "const LOFI_CHECK_COMPRESSED {:#x}",
            request::CHECK_COMPRESSED
        ),
        format!("const LOFI_SET_CAPACITY {:#x}", request::SET_CAPACITY),
        format!("const LOFI_DKIOCSTATE {:#x}", request::DKIOCSTATE),
        format!("const LOFI_DKIO_NONE {:#x}", dkio::NONE),
        format!("const LOFI_DKIO_EJECTED {:#x}", dkio::EJECTED),
        format!("const LOFI_DKIO_INSERTED {:#x}", dkio::INSERTED),
        format!("const LOFI_DKIO_DEV_GONE {:#x}", dkio::DEV_GONE),
        format!("string LOFI_CTL_NAME {ctl_name}"),
        format!("string LOFI_BLOCK_DIR {block_dir}"),
    ]
}

fn c_lines() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let include = manifest.join("../../include/uapi");
    let source = manifest.join("tests/uapi_layout.c");
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("uapi_layout");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
    assert!(
        status.success(),
        "{cc} failed to build {}",
        source.display()
    );
    let out = Command::new(&exe).output().expect("run uapi_layout");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn rust_mirror_matches_the_c_header() {
    let c = c_lines();
    let rust = rust_lines();
    let mismatches: Vec<String> = c
        .iter()
        .zip(&rust)
        .filter(|(c, r)| c != r)
        .map(|(c, r)| format!("C header: {c}\n    Rust: {r}"))
        .collect();
    assert!(
        mismatches.is_empty(),
        "ABI mismatch:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(c.len(), rust.len(), "C printed {c:?}");
}
