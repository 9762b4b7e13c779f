// Test support for the Swift tests: an in-process network of witan clients driven through the
// generated Swift bindings, with the wall clock.
//
// - Router: the "network". A FIFO queue of published packets and, per member, the topics the
//   client asked to follow (Transport.subscribe / unsubscribe). Callbacks arrive on Rust
//   threads, so every access takes a lock.
// - Member: one client with its own database file, its event log and a mailbox that collects
//   the packets delivered while the client is closed.
// - TestNet: a temporary directory, the router and the members; `deliver` hands every queued
//   packet to every subscribed member's receive() (the sender included: its echo must be a
//   duplicate), `settle` alternates deliver/poll with short sleeps until a condition holds.
//
// Time is the wall clock, so conversations use small settings (fastSettings) and every wait
// is a bounded loop.
import Foundation
import XCTest
@testable import Witan

let conv = "garden-club"

/// Conversation settings for wall-clock tests: votes at once, commits after 50 ms, and a
/// missing commit (for example when the epoch steward itself is removed: it never commits its
/// own removal) is recovered by a freeze round after 1.5 s instead of 30 s.
func fastSettings(autoVote: Bool = true) -> ConversationSettings {
    var s = defaultConversationSettings()
    s.pendingJoinTimeoutMs = 60_000
    s.commitInactivityMs = 1_500
    s.recoveryInactivityMs = 1_000
    s.freezeWindowMs = 500
    s.voteTimeoutMs = 5_000
    s.autoVoteDelayMs = autoVote ? 0 : nil
    s.commitDelayMs = 50
    s.maxClockSkewMs = 5_000
    return s
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

/// The in-process network: a FIFO of published packets and each member's topics.
final class Router: @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [(topic: String, payload: Data)] = []
    private var topics: [Int: Set<String>] = [:]
    private var isOffline = false

    /// While true, publish throws TransportError.Unavailable (packets stay in the outbox).
    var offline: Bool {
        get { lock.sync { isOffline } }
        set { lock.sync { isOffline = newValue } }
    }

    func transport(for member: Int) -> Transport { RouterTransport(router: self, member: member) }

    fileprivate func publish(_ packet: OutboundPacket) throws {
        try lock.sync {
            if isOffline { throw TransportError.Unavailable(reason: "router offline") }
            queue.append((packet.topic, packet.payload))
        }
    }

    fileprivate func setSubscribed(_ member: Int, _ topic: String, _ on: Bool) {
        lock.sync {
            if on { topics[member, default: []].insert(topic) } else { topics[member]?.remove(topic) }
        }
    }

    func next() -> (topic: String, payload: Data)? {
        lock.sync { queue.isEmpty ? nil : queue.removeFirst() }
    }

    func isSubscribed(_ member: Int, _ topic: String) -> Bool {
        lock.sync { topics[member]?.contains(topic) ?? false }
    }

    func topics(of member: Int) -> Set<String> {
        lock.sync { topics[member] ?? [] }
    }
}

final class RouterTransport: Transport, @unchecked Sendable {
    let router: Router
    let member: Int

    init(router: Router, member: Int) {
        self.router = router
        self.member = member
    }

    func publish(packet: OutboundPacket) throws { try router.publish(packet) }
    func subscribe(topic: String) { router.setSubscribed(member, topic, true) }
    func unsubscribe(topic: String) { router.setSubscribed(member, topic, false) }
}

/// Records every event the client reports.
final class RecordingListener: EventListener, @unchecked Sendable {
    private let lock = NSLock()
    private var events: [WitanEvent] = []

    func onEvent(event: WitanEvent) { lock.sync { events.append(event) } }

    func all() -> [WitanEvent] { lock.sync { events } }
}

/// Collects the library's log lines.
final class CapturingLogger: Logger, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func log(level: LogLevel, target: String, message: String) {
        lock.sync { lines.append("\(level) \(target) \(message)") }
    }

    func all() -> [String] { lock.sync { lines } }
}

/// One member: a client on its own database file (nil while closed).
final class Member {
    let index: Int
    let databasePath: String
    let listener = RecordingListener()
    var mailbox: [Data] = []
    private(set) var client: WitanClient?
    private let router: Router

    init(index: Int, databasePath: String, router: Router) {
        self.index = index
        self.databasePath = databasePath
        self.router = router
    }

    /// The open client. Do not keep it in a local across `close()`: the restart would then
    /// not release the Rust object.
    var c: WitanClient {
        get throws {
            guard let client else { throw TestFailure(description: "member \(index) is closed") }
            return client
        }
    }

    func open() throws {
        client = try WitanClient.open(
            config: ClientConfig(databasePath: databasePath, identitySecret: nil),
            transport: router.transport(for: index),
            listener: listener)
    }

    /// Drops the client (frees the Rust object and its database handle), like a killed app.
    func close() { client = nil }

    func takeMailbox() -> [InboundPacket] {
        defer { mailbox.removeAll() }
        return mailbox.map { InboundPacket(topic: "", payload: $0) }
    }

    func events() -> [WitanEvent] { listener.all() }

    /// Bodies of the MessageReceived events.
    func receivedBodies() -> [String] {
        events().compactMap {
            if case let .messageReceived(_, message) = $0 { return message.body.text }
            return nil
        }
    }

    func voteRequest(_ proposalId: UInt64) -> ProposalInfo? {
        events().lazy.compactMap { event -> ProposalInfo? in
            if case let .voteRequested(_, proposal) = event, proposal.proposalId == proposalId {
                return proposal
            }
            return nil
        }.first
    }

    func info(_ conversationId: String = conv) async throws -> ConversationInfo? {
        try await c.conversation(conversationId: conversationId)
    }

    func history(_ conversationId: String = conv) async throws -> [StoredMessage] {
        try await c.messages(conversationId: conversationId, afterSeq: nil, limit: 1_000)
    }

    func historyBodies(_ conversationId: String = conv) async throws -> [String] {
        try await history(conversationId).map { $0.body.text }
    }

    /// Votes yes on every add-member or steward-election proposal it was asked about.
    func approveOpenVotes() async throws {
        guard let client else { return }
        for event in events() {
            guard case let .voteRequested(conversationId, proposal) = event,
                  proposal.kind == .addMember || proposal.kind == .stewardElection
            else { continue }
            let open = try await client.conversation(conversationId: conversationId)?.openProposals ?? []
            guard open.contains(where: { $0.proposalId == proposal.proposalId }) else { continue }
            // Already voted, or decided meanwhile: fine.
            try? await client.vote(conversationId: conversationId, proposalId: proposal.proposalId, approve: true)
        }
    }
}

/// A temporary directory, a router and `size` members, all opened. Call `close()` at the end.
final class TestNet {
    let dir: URL
    let router = Router()
    let members: [Member]
    private let approveVotes: Bool

    init(_ size: Int, approveVotes: Bool = false) throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("witan-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let router = self.router
        let dir = self.dir
        members = (0..<size).map {
            Member(index: $0, databasePath: dir.appendingPathComponent("member-\($0).db").path, router: router)
        }
        self.approveVotes = approveVotes
        for m in members { try m.open() }
    }

    subscript(i: Int) -> Member { members[i] }

    /// Hands every queued packet to every subscribed member (closed ones: their mailbox).
    func deliver() async throws {
        while let (topic, payload) = router.next() {
            for m in members where router.isSubscribed(m.index, topic) {
                if let client = m.client {
                    _ = try await client.receive(packets: [InboundPacket(topic: topic, payload: payload)])
                } else {
                    m.mailbox.append(payload)
                }
            }
        }
    }

    func pollAll() async throws {
        for m in members {
            if let client = m.client { _ = try await client.poll() }
        }
    }

    /// Delivers and polls, sleeping `pauseMs` between rounds, until `condition` holds; throws
    /// with a summary of every member's conversation after `maxRounds` rounds.
    func settle(
        _ what: String,
        maxRounds: Int = 400,
        pauseMs: UInt64 = 20,
        until condition: () async throws -> Bool
    ) async throws {
        for _ in 0..<maxRounds {
            try await deliver()
            try await pollAll()
            try await deliver()
            if approveVotes {
                for m in members { try await m.approveOpenVotes() }
                try await deliver()
            }
            if try await condition() { return }
            try await Task.sleep(nanoseconds: pauseMs * 1_000_000)
        }
        throw TestFailure(description: "\(what): not reached after \(maxRounds) rounds; \(try await summary())")
    }

    func summary(_ conversationId: String = conv) async throws -> String {
        var parts: [String] = []
        for m in members {
            guard let client = m.client else { parts.append("member \(m.index): closed"); continue }
            if let info = try await client.conversation(conversationId: conversationId) {
                parts.append("member \(m.index): \(info.state) epoch \(info.epoch) members \(info.members.count) "
                    + "open proposals \(info.openProposals.map { $0.kind })")
            } else {
                parts.append("member \(m.index): no conversation")
            }
        }
        return parts.joined(separator: "; ")
    }

    /// True when every listed member is Working in the same epoch with exactly those members.
    func agree(_ indices: [Int], _ conversationId: String = conv) async throws -> Bool {
        let ids = Set(try indices.map { try members[$0].c.memberId() })
        var infos: [ConversationInfo] = []
        for i in indices {
            guard let info = try await members[i].info(conversationId) else { return false }
            infos.append(info)
        }
        return infos.allSatisfy {
            $0.state == .working && $0.epoch == infos[0].epoch
                && Set($0.members.map { $0.memberId }) == ids && $0.openProposals.isEmpty
        }
    }

    /// Member 0 creates the conversation, the others request to join; waits until all agree.
    func form(_ settings: ConversationSettings = fastSettings(), _ conversationId: String = conv) async throws {
        _ = try await members[0].c.createConversation(conversationId: conversationId, settings: settings)
        for m in members.dropFirst() { try await m.c.requestToJoin(conversationId: conversationId) }
        let all = Array(members.indices)
        try await settle("all \(members.count) members in one epoch") { try await agree(all, conversationId) }
    }

    func close() {
        for m in members { m.close() }
        try? FileManager.default.removeItem(at: dir)
    }
}

extension Data {
    var text: String { String(decoding: self, as: UTF8.self) }
}

extension String {
    var data: Data { Data(utf8) }
}

/// Runs `body` and returns the WitanError it throws; fails the test if it throws nothing or
/// something else.
func witanError<T>(
    _ body: () async throws -> T,
    file: StaticString = #filePath,
    line: UInt = #line
) async -> WitanError? {
    do {
        _ = try await body()
        XCTFail("expected a WitanError", file: file, line: line)
    } catch let error as WitanError {
        return error
    } catch {
        XCTFail("expected a WitanError, got \(error)", file: file, line: line)
    }
    return nil
}

extension NSLock {
    /// `withLock` for every deployment target (NSLocking.withLock needs iOS 16 / macOS 13).
    func sync<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// `XCTUnwrap` for an async expression (XCTest's autoclosures cannot await).
func XCTUnwrapAsync<T>(
    _ message: String = "",
    file: StaticString = #filePath,
    line: UInt = #line,
    _ expression: () async throws -> T?
) async throws -> T {
    let value = try await expression()
    return try XCTUnwrap(value, message, file: file, line: line)
}
