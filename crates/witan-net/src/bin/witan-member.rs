//! One witan member in one process (see `witan_net::cli::member`).

fn main() -> std::process::ExitCode {
    witan_net::cli::member::main(std::env::args().skip(1).collect())
}
