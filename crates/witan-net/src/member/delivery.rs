//! The delivery thread and catch-up: everything that reaches witan goes through here.
//!
//! - Live traffic (validated by the network task, on a subscribed topic) is fed to
//!   `WitanClient::receive` in batches. A batch the client refuses is dropped and the next
//!   catch-up brings it from the store.
//! - Catch-up asks the store node, for each relay topic with subscribed content topics, for
//!   everything after that relay topic's cursor, page by page, oldest first (one query spans
//!   all of a relay topic's content topics, so a conversation's welcome and application
//!   traffic arrive in the order the store received them), feeds each page to
//!   `WitanClient::handle_wakeup`, and only after that returned Ok moves the cursor past the
//!   page. A crash or a refused page leaves the cursor where it was: the page comes again.
//!
//! Catch-up runs when a client is attached (start), when the store node is (re)connected,
//! after `subscribe` adds a topic, after live packets were dropped, on `resume`, and when the
//! host asks (`catch_up`). Runs never overlap: they hold the cursor store's lock.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use witan::client::{InboundPacket, Notification, WitanClient};

use super::cursors::{Cursor, CursorStore};
use super::{CatchUpReport, Inner, NetEvent};
use crate::error::NetError;
use crate::waku::store_query::{StoreQueryRequest, StoreQueryResponse, status};

/// Live packets fed to `receive` in one call at most.
const MAX_LIVE_BATCH: usize = 256;
/// Pages one catch-up reads at most per relay topic (about a million messages); the next
/// catch-up goes on from the cursor.
const MAX_PAGES_PER_RUN: u32 = 10_000;
/// Notifications a catch-up report keeps (the listener hears about all of them).
const MAX_REPORTED_NOTIFICATIONS: usize = 1_000;
/// When the store no longer knows a cursor (its message was pruned), catch-up restarts from
/// the cursor's timestamp minus this margin (clock skew between senders), in nanoseconds.
const LOST_CURSOR_MARGIN_NS: i64 = 120 * 1_000_000_000;

pub(crate) enum Delivery {
    Live(InboundPacket),
    CatchUp,
    Stop,
}

/// The delivery thread's loop; returns on `Stop` or when every sender is gone.
pub(crate) fn run(inner: Arc<Inner>, rx: Receiver<Delivery>) {
    while let Ok(first) = rx.recv() {
        if inner.stopped.load(Ordering::Relaxed) {
            return;
        }
        let mut live = Vec::new();
        let mut catch_up = false;
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Delivery::Live(packet) => live.push(packet),
                Delivery::CatchUp => catch_up = true,
                Delivery::Stop => return,
            }
            next = if live.len() < MAX_LIVE_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !live.is_empty() {
            inner.feed_live(live);
        }
        let wanted = catch_up || inner.shared.missed.swap(false, Ordering::Relaxed);
        // Before a client is attached there is no one to catch up for (attaching asks again).
        if wanted && inner.client().is_some() {
            // Failures are reported as events; the next trigger tries again.
            let _ = inner.catch_up();
        }
    }
}

impl Inner {
    fn feed_live(&self, packets: Vec<InboundPacket>) {
        let Some(client) = self.client() else {
            // Not attached yet: attaching runs a catch-up, which brings these from the store.
            return;
        };
        let count = packets.len() as u32;
        match client.receive(packets) {
            Ok(report) => self.emit(NetEvent::Delivered {
                packets: count,
                accepted: report.accepted,
                duplicates: report.duplicates,
                rejected: report.rejected,
            }),
            Err(e) => {
                self.shared.missed.store(true, Ordering::Relaxed);
                self.emit(NetEvent::Warning {
                    message: format!("live packets refused by the client ({e}); catching up"),
                });
            }
        }
    }

    /// One catch-up over every relay topic with subscribed content topics.
    pub(crate) fn catch_up(&self) -> Result<CatchUpReport, NetError> {
        let cursors = self.lock_cursors();
        let result = self.catch_up_locked(&cursors);
        match &result {
            // An empty catch-up is no news (the member program runs one every few seconds).
            Ok(report) if report.packets == 0 => {}
            Ok(report) => self.emit(NetEvent::CaughtUp {
                pages: report.pages,
                packets: report.packets,
            }),
            Err(e) => self.emit(NetEvent::Warning {
                message: format!("catch-up failed: {e}"),
            }),
        }
        result
    }

    fn catch_up_locked(&self, cursors: &CursorStore) -> Result<CatchUpReport, NetError> {
        let client = self.client().ok_or(NetError::NotAttached)?;
        let mut report = CatchUpReport::default();
        if self.store_peer.is_none() {
            return Ok(report);
        }
        for (relay_topic, content_topics) in self.shared.by_relay_topic() {
            self.catch_up_topic(cursors, &client, &relay_topic, &content_topics, &mut report)?;
        }
        Ok(report)
    }

    fn catch_up_topic(
        &self,
        cursors: &CursorStore,
        client: &WitanClient,
        relay_topic: &str,
        content_topics: &BTreeSet<String>,
        report: &mut CatchUpReport,
    ) -> Result<(), NetError> {
        let mut cursor = cursors.get(relay_topic)?;
        let mut time_start = None;
        for _ in 0..MAX_PAGES_PER_RUN {
            let request = self.page_request(relay_topic, content_topics, &cursor, time_start);
            let response = self.query(request)?;
            if response.status_code == Some(status::CURSOR_NOT_FOUND) && time_start.is_none() {
                // The store pruned (or never had) the cursor's message: go on by time.
                let from = cursor
                    .as_ref()
                    .map(|c| c.timestamp_ns - LOST_CURSOR_MARGIN_NS);
                self.emit(NetEvent::Warning {
                    message: format!(
                        "the store lost the cursor of {relay_topic}; catching up by time"
                    ),
                });
                cursor = None;
                time_start = Some(from.unwrap_or(0));
                continue;
            }
            if !response.is_ok() {
                return Err(NetError::Store(format!(
                    "status {:?}: {}",
                    response.status_code,
                    response.status_desc.unwrap_or_default()
                )));
            }
            report.pages += 1;
            let Some(last) = self.feed_page(client, content_topics, &response, report)? else {
                return Ok(());
            };
            cursors.set(relay_topic, &last)?;
            cursor = Some(last);
            time_start = None;
            if response.pagination_cursor.is_none() {
                return Ok(());
            }
        }
        Ok(())
    }

    fn page_request(
        &self,
        relay_topic: &str,
        content_topics: &BTreeSet<String>,
        cursor: &Option<Cursor>,
        time_start: Option<i64>,
    ) -> StoreQueryRequest {
        StoreQueryRequest {
            request_id: self.next_request_id(),
            include_data: true,
            pubsub_topic: Some(relay_topic.to_string()),
            content_topics: content_topics.iter().cloned().collect(),
            time_start,
            time_end: None,
            message_hashes: Vec::new(),
            pagination_cursor: cursor.as_ref().map(|c| c.message_hash.clone()),
            pagination_forward: true,
            pagination_limit: Some(u64::from(self.page_size)),
        }
    }

    /// Feeds one page; returns the cursor after it (`None` for an empty page). Entries that
    /// are not well-formed messages on the asked topics are skipped (and passed over).
    fn feed_page(
        &self,
        client: &WitanClient,
        content_topics: &BTreeSet<String>,
        response: &StoreQueryResponse,
        report: &mut CatchUpReport,
    ) -> Result<Option<Cursor>, NetError> {
        let mut packets = Vec::new();
        let mut last = None;
        for entry in &response.messages {
            let (Some(hash), Some(message)) = (&entry.message_hash, &entry.message) else {
                report.skipped += 1;
                continue;
            };
            last = Some(Cursor {
                message_hash: hash.clone(),
                timestamp_ns: message.timestamp.unwrap_or(0),
            });
            if message.check(self.limits.max_packet_bytes).is_err()
                || !content_topics.contains(&message.content_topic)
            {
                report.skipped += 1;
                continue;
            }
            packets.push(InboundPacket {
                topic: message.content_topic.clone(),
                payload: message.payload.clone(),
            });
        }
        if !packets.is_empty() {
            let count = packets.len() as u32;
            let wakeup = client.handle_wakeup(packets)?;
            report.packets += count;
            report.note(wakeup.notifications, wakeup.next_wakeup_at_ms);
        }
        Ok(last)
    }
}

impl CatchUpReport {
    fn note(&mut self, notifications: Vec<Notification>, next_wakeup_at_ms: Option<u64>) {
        let room = MAX_REPORTED_NOTIFICATIONS.saturating_sub(self.notifications.len());
        self.notifications
            .extend(notifications.into_iter().take(room));
        self.next_wakeup_at_ms = match (self.next_wakeup_at_ms, next_wakeup_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
