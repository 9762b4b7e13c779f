//! Build script: the same link settings as libwitan's (packed relative relocations; see the
//! repository's build.rs, which this runs), so the two libraries' sizes compare.

#[path = "../../build.rs"]
mod witan_build;

fn main() {
    witan_build::main();
}
