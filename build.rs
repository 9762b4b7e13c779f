//! Build script: packs the relative relocations of the shipped cdylib (the library the
//! Kotlin and Swift bindings load). Only the cdylib's own link step changes, so the
//! dependencies stay cached and the rlib, staticlib and test binaries are untouched.
//!
//! A position-independent library carries one 24-byte relocation per pointer stored in its
//! data (vtables, OpenSSL's algorithm tables, string tables): about 650 KiB for witan.
//! Packed, they take a few KiB, and the loader applies them just as fast.
//! - Android (API 23 and later, and witan's minimum is 24): lld's Android packing.
//! - Linux with glibc: `DT_RELR`, which needs glibc 2.36. It is linked with GNU ld, which
//!   also records the `GLIBC_ABI_DT_RELR` requirement, so an older glibc refuses the
//!   library with a clear message instead of loading it unrelocated. It is only used when
//!   the build machine's own glibc and GNU ld support it (that machine runs the tests).

use std::process::Command;

// `pub`: crates/witan-net-ffi's build script runs this one for its own cdylib.
pub fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target.contains("-linux-android") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--pack-dyn-relocs=android");
    } else if target.ends_with("-linux-gnu") && target == host && native_relr_supported() {
        println!("cargo:rustc-cdylib-link-arg=-fuse-ld=bfd");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether this machine's glibc (2.36+) and GNU ld (2.38+) support `DT_RELR`.
fn native_relr_supported() -> bool {
    let glibc = command_output("getconf", &["GNU_LIBC_VERSION"]);
    let ld = command_output("ld.bfd", &["--version"]);
    let glibc_ok = glibc
        .as_deref()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(parse_version)
        .is_some_and(|v| v >= (2, 36));
    // "GNU ld (GNU Binutils for Debian) 2.40": the version is the last word of line one.
    let ld_ok = ld
        .as_deref()
        .and_then(|s| s.lines().next())
        .and_then(|line| line.split_whitespace().last())
        .and_then(parse_version)
        .is_some_and(|v| v >= (2, 38));
    glibc_ok && ld_ok
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// "2.36" or "2.40.0" as (major, minor).
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit());
    Some((major, minor.parse().ok()?))
}
