//! The programs: `witan-member` ([`member`]) and `witan-node` ([`node`]), with their small
//! argument parser ([`args`]) and the JSON lines they print ([`lines`]). The binaries in
//! `src/bin/` only call `main` here, so the story can run the same programs.

pub mod args;
pub mod lines;
pub mod member;
pub mod node;
