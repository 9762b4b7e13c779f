//! The service node: relays and keeps witan's traffic (see `witan_net::cli::node`).

fn main() -> std::process::ExitCode {
    witan_net::cli::node::main(std::env::args().skip(1).collect())
}
