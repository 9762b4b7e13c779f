//! Build script: link arguments of the shipped cdylib (the library the Kotlin and Swift
//! bindings load): packed relative relocations, and 16 KiB page alignment on Android. Only
//! the cdylib's own link step changes, so the dependencies stay cached and the rlib,
//! staticlib and test binaries are untouched. Link arguments given here cannot be lost the
//! way `CARGO_TARGET_<triple>_RUSTFLAGS` are when a `RUSTFLAGS` is exported (Cargo then
//! ignores the per-target variable).
//!
//! A position-independent library carries one 24-byte relocation per pointer stored in its
//! data (vtables, OpenSSL's algorithm tables, string tables): about 650 KiB for witan.
//! Packed, they take a few KiB, and the loader applies them just as fast.
//! - Android (API 23 and later, and witan's minimum is 24): lld's Android packing.
//! - Linux with glibc: `DT_RELR`, which needs glibc 2.36. It is linked with GNU ld, which
//!   also records the `GLIBC_ABI_DT_RELR` requirement, so an older glibc refuses the
//!   library with a clear message instead of loading it unrelocated. It is only used when
//!   the build machine's own glibc and GNU ld support it (that machine runs the tests).
//!
//! 16 KiB pages: Android 15 devices may run with 16 KiB memory pages, and Google Play
//! requires every native library of an app to have its loadable segments aligned to at
//! least 16 KiB. NDK lld before r28 aligns to 4 KiB unless told, so every Android target
//! links with `-z max-page-size=16384`. `aarch64-unknown-linux-gnu`, which witan does not
//! ship but CI cross-builds as the stand-in for arm64-v8a (scripts/test-cross.sh), gets the
//! same flag when cross-compiled, so that CI shows it reaching the linker (GNU ld would
//! align to 64 KiB by itself); a native aarch64 Linux build keeps GNU ld's alignment.

use std::process::Command;

/// The page alignment Android needs of native libraries (16 KiB).
const ANDROID_PAGE_ALIGN: u32 = 16 * 1024;
/// The target CI cross-builds in place of arm64-v8a (see the module doc).
const ANDROID_ARM64_STAND_IN: &str = "aarch64-unknown-linux-gnu";

// `pub`: crates/witan-net-ffi's build script runs this one for its own cdylib.
pub fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    let android = target.contains("-linux-android");
    if android || (target == ANDROID_ARM64_STAND_IN && target != host) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,max-page-size={ANDROID_PAGE_ALIGN}");
    }
    if android {
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
