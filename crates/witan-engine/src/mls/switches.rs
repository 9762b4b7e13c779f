//! The switches that turn each cache layer of witan off ([`Layer`]), read once per process
//! from `WITAN_CACHE_OFF`. They sit below every cache so that each (the decoded group, the
//! key cache in `crypto`, the store's and the client's) can ask without importing the others.

use std::sync::OnceLock;

/// A cache layer of witan, each of which can be switched off (for tests: the whole suite runs
/// once with every cache off, so that no cache can change a result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The decoded MLS group kept between the engine runs of a step ([`GroupCache`]).
    Group,
    /// That group — and the conversation states the step decoded (the client) — kept from
    /// one step to the next while no other connection wrote.
    Kept,
    /// Message secrets written once per step instead of after every message (see the module
    /// doc); needs [`Layer::Group`].
    Secrets,
    /// Decoded Ed25519 public keys (`mls::crypto`).
    Keys,
    /// A conversation's engine state decoded once per step and written back at its end (the
    /// client).
    State,
    /// Sealed votes that arrive together checked as one batch before they are applied
    /// (`mls::checked`).
    Votes,
    /// Signatures found valid, remembered so that checking one again costs a hash: a
    /// client's MLS signatures (`mls::memo`, in the cache of [`Layer::Group`], so off with
    /// it) and a conversation's vote signatures (`mls::checked`).
    Signatures,
}

impl Layer {
    const ALL: [Layer; 7] = [
        Layer::Group,
        Layer::Kept,
        Layer::Secrets,
        Layer::Keys,
        Layer::State,
        Layer::Votes,
        Layer::Signatures,
    ];

    /// The layer's name in `WITAN_CACHE_OFF`.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Group => "group",
            Layer::Kept => "kept",
            Layer::Secrets => "secrets",
            Layer::Keys => "keys",
            Layer::State => "state",
            Layer::Votes => "votes",
            Layer::Signatures => "signatures",
        }
    }

    /// Whether the layer is on. Every layer is on unless the environment variable
    /// `WITAN_CACHE_OFF` names it (a comma-separated list of names) or says `all`; it is read
    /// once per process. `secrets` and `kept` are off whenever `group` is.
    pub fn enabled(self) -> bool {
        static OFF: OnceLock<Vec<Layer>> = OnceLock::new();
        let off = OFF.get_or_init(|| {
            let spec = std::env::var("WITAN_CACHE_OFF").unwrap_or_default();
            switched_off(&spec)
        });
        !off.contains(&self)
    }
}

/// The layers `spec` (the value of `WITAN_CACHE_OFF`) switches off.
fn switched_off(spec: &str) -> Vec<Layer> {
    let names: Vec<&str> = spec.split(',').map(str::trim).collect();
    let mut off: Vec<Layer> = Layer::ALL
        .into_iter()
        .filter(|l| names.contains(&"all") || names.contains(&l.name()))
        .collect();
    if off.contains(&Layer::Group) {
        off.extend([Layer::Kept, Layer::Secrets]);
    }
    off
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_switches_read_names_and_all() {
        assert!(switched_off("").is_empty());
        assert_eq!(switched_off("keys"), [Layer::Keys]);
        assert_eq!(switched_off(" state , keys"), [Layer::Keys, Layer::State]);
        assert_eq!(
            switched_off("group"),
            [Layer::Group, Layer::Kept, Layer::Secrets]
        );
        let all = switched_off("all");
        assert!(Layer::ALL.iter().all(|l| all.contains(l)));
        assert!(switched_off("nonsense").is_empty());
    }
}
