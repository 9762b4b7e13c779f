//! One native library, `libwitan_net_ffi`, for apps that use witan with witan-net: it holds
//! witan's UniFFI surface and witan-net's (the `ffi` feature), compiled once, so the
//! `WitanClient` a Kotlin or Swift app opens and the `WitanNet` transport it passes are
//! objects of the same library. (A second library holding only witan-net would carry its
//! own copy of witan, whose objects could not be mixed with `libwitan`'s.)
//!
//! Kotlin: the checked-in witan bindings (`bindings/kotlin`) load `libwitan` by default; set
//! the JVM property `uniffi.component.witan.libraryOverride=witan_net_ffi` (or call
//! `System.setProperty` before the first call) so that they load this library instead. The
//! witan-net bindings (written by `crates/witan-net-ffi/generate.sh`, not checked in) load it
//! by name. Swift: link this library (or its static form) in place of `libwitan`.

pub use witan;
pub use witan_net;
