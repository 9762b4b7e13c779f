//! The engine-level harness of the scenario tests: `witan_testing::engine` (members running
//! the sans-IO engine over in-memory MLS storage, on an in-memory router, under a virtual
//! clock), included with `mod support;`.

pub use witan_testing::engine::*;
