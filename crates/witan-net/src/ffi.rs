//! The UniFFI export of the transport (cargo feature `ffi`), for Kotlin and Swift: a
//! [`WitanNet`] object that starts the network, hands witan its `Transport`, and catches up.
//!
//! Kotlin and Swift reach it through one native library that holds witan and witan-net
//! together (`crates/witan-net-ffi`): the `WitanClient` an app opens and the transport it
//! passes must come from the same copy of witan. The host does what the Rust host does:
//!
//! ```text
//! net = WitanNet.start(settings)
//! client = WitanClient.open(config, net.transport(), listener)
//! net.attach(client)          // live packets go to receive(); a first catch-up runs
//! net.catchUp()               // on a push, on resume, whenever the app wants
//! ```

use std::sync::Arc;

use witan::client::{Transport, WitanClient};

use crate::error::NetError;
use crate::limits::Limits;
use crate::member::{CatchUpReport, NetConfig, NetTransport};
use crate::waku::sharding::Sharding;

/// How the app joins the network (the Kotlin/Swift form of [`NetConfig`]).
#[derive(Debug, Clone, uniffi::Record)]
pub struct NetSettings {
    /// Where to accept connections (multiaddrs); empty for a phone, which only dials out.
    #[uniffi(default)]
    pub listen_addresses: Vec<String>,
    /// Relay peers to dial and keep dialling (multiaddrs ending in `/p2p/<peer id>`).
    pub peers: Vec<String>,
    /// The store node to catch up from (also dialled).
    #[uniffi(default)]
    pub store_node: Option<String>,
    /// The cursor file (next to the app's database); `None` keeps cursors in memory.
    #[uniffi(default)]
    pub cursor_path: Option<String>,
    #[uniffi(default = 66)]
    pub cluster: u16,
    #[uniffi(default = 8)]
    pub shards: u16,
    /// Largest packet the relay carries (Waku's default, 150 KiB, when 0).
    #[uniffi(default = 0)]
    pub max_packet_bytes: u64,
}

impl NetSettings {
    fn config(self) -> Result<NetConfig, NetError> {
        let parse = |what: &str, a: &str| {
            a.parse()
                .map_err(|e| NetError::Config(format!("{what} {a:?}: {e}")))
        };
        let limits = match self.max_packet_bytes {
            0 => Limits::default(),
            n => Limits::new(usize::try_from(n).unwrap_or(usize::MAX)).map_err(NetError::Config)?,
        };
        Ok(NetConfig {
            listen: self
                .listen_addresses
                .iter()
                .map(|a| parse("listen address", a))
                .collect::<Result<_, _>>()?,
            peers: self
                .peers
                .iter()
                .map(|a| parse("peer", a))
                .collect::<Result<_, _>>()?,
            store: self
                .store_node
                .as_deref()
                .map(|a| parse("store node", a))
                .transpose()?,
            cursor_path: self.cursor_path.map(Into::into),
            sharding: Sharding::new(self.cluster, self.shards).map_err(NetError::Config)?,
            limits,
            ..NetConfig::default()
        })
    }
}

/// The network of one app: see the module doc.
#[derive(uniffi::Object)]
pub struct WitanNet {
    net: Arc<NetTransport>,
}

#[uniffi::export(async_runtime = "tokio")]
impl WitanNet {
    /// Starts the network; returns once its listen addresses are known.
    #[uniffi::constructor]
    pub fn start(settings: NetSettings) -> Result<Arc<WitanNet>, NetError> {
        let net = NetTransport::start(settings.config()?)?;
        Ok(Arc::new(WitanNet { net }))
    }

    /// The `Transport` to open the `WitanClient` with.
    pub fn transport(&self) -> Arc<dyn Transport> {
        self.net.clone()
    }

    /// Connects the client that receives what arrives, and starts a first catch-up.
    pub fn attach(&self, client: Arc<WitanClient>) {
        self.net.attach(&client);
    }

    /// Catches up from the store now (on witan's worker threads, never the caller's).
    pub async fn catch_up(&self) -> Result<CatchUpReport, NetError> {
        let net = self.net.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || net.catch_up())
                .await
                .map_err(|e| NetError::Unavailable(format!("catch-up task: {e}")))?,
            Err(_) => net.catch_up(),
        }
    }

    /// After the app comes back: redial dropped peers now and catch up in the background.
    pub fn resume(&self) {
        self.net.resume();
    }

    /// Where this app accepts connections, each ending in `/p2p/<peer id>`.
    pub fn listen_addresses(&self) -> Vec<String> {
        self.net
            .listen_addresses()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub fn peer_id(&self) -> String {
        self.net.peer_id().to_string()
    }

    pub fn connected_peers(&self) -> u32 {
        u32::try_from(self.net.connected_peers()).unwrap_or(u32::MAX)
    }

    /// Stops the network (publishing fails from then on; the outbox keeps what comes).
    pub fn stop(&self) {
        self.net.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_before_anything_starts() {
        let good = NetSettings {
            listen_addresses: vec!["/ip4/127.0.0.1/tcp/0".into()],
            peers: vec![],
            store_node: None,
            cursor_path: None,
            cluster: 66,
            shards: 8,
            max_packet_bytes: 0,
        };
        let config = good.clone().config().unwrap();
        assert_eq!(config.limits, Limits::default());
        let bad_peer = NetSettings {
            peers: vec!["nonsense".into()],
            ..good.clone()
        };
        assert!(matches!(bad_peer.config(), Err(NetError::Config(_))));
        let no_shards = NetSettings {
            shards: 0,
            ..good.clone()
        };
        assert!(WitanNet::start(no_shards).is_err());
        let too_big = NetSettings {
            max_packet_bytes: u64::MAX,
            ..good
        };
        assert!(too_big.config().is_err());
    }
}
