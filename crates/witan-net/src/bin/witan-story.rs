//! The group story as separate processes you can watch (see `witan_net::story`). It runs
//! itself as the node (`witan-story node …`, the `witan-node` program) and as each member
//! (`witan-story member …`, the `witan-member` program), so one `cargo run` builds all it
//! needs.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("node") => witan_net::cli::node::main(args[1..].to_vec()),
        Some("member") => witan_net::cli::member::main(args[1..].to_vec()),
        _ => match std::env::current_exe() {
            Ok(path) => witan_net::story::main(
                witan_net::story::Program {
                    path,
                    prefix: Vec::new(),
                },
                args,
            ),
            Err(e) => {
                eprintln!("witan-story: cannot find my own program: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
