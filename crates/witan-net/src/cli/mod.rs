//! The programs: `witan-member` ([`member`]) and `witan-node` ([`node`]), with their small
//! argument parser ([`args`]) and the JSON lines they print ([`lines`]). The binaries in
//! `src/bin/` only call `main` here, so the story can run the same programs.

pub mod args;
pub mod lines;
pub mod member;
pub mod node;

/// The exit of a program: an error is printed as a JSON line and fails the process.
pub(crate) fn exit(result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            lines::print(&serde_json::json!({"error": e}));
            std::process::ExitCode::FAILURE
        }
    }
}
