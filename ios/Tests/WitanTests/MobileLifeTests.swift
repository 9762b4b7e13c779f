// Mobile life as a Swift app sees it: a client in the notification-extension role shows the
// pushed message and leaves the protocol work (here: an automatic vote) to the app, and a
// database encrypted with a host-held key keeps working across restarts while a wrong key is
// a typed error. Uses the network of Support.swift.
import Foundation
import XCTest
@testable import Witan

/// A transport that only records what it is asked to publish.
final class RecordingTransport: Transport, @unchecked Sendable {
    private let lock = NSLock()
    private var packets: [OutboundPacket] = []

    func publish(packet: OutboundPacket) throws { lock.sync { packets.append(packet) } }
    func subscribe(topic: String) {}
    func unsubscribe(topic: String) {}

    var published: [OutboundPacket] { lock.sync { packets } }
}

final class MobileLifeTests: XCTestCase {
    func testTheExtensionNotifiesAndLeavesTheVoteToTheApp() async throws {
        let net = try TestNet(3)
        defer { net.close() }
        // Votes by hand: the extension casts only automatic votes that are due.
        _ = try await net[0].c.createConversation(conversationId: conv, settings: fastSettings(autoVote: false))
        try await net[1].c.requestToJoin(conversationId: conv)
        try await net.settle("two members") { try await net.agree([0, 1]) }
        // The epoch steward proposes the newcomer; the other member must vote.
        let steward = try await net[0].info()?.epochSteward
        let (proposer, voter) = try net[0].c.memberId() == steward ? (0, 1) : (1, 0)

        net[voter].close() // the app is suspended; the push goes to the extension
        _ = try await net[proposer].c.sendMessage(conversationId: conv, body: "dinner at eight?".data)
        try await net[2].c.requestToJoin(conversationId: conv)
        try await net.deliver()
        let push = net[voter].takeMailbox()

        let transport = RecordingTransport()
        var config = ClientConfig(databasePath: net[voter].databasePath, identitySecret: nil)
        config.role = .notificationExtension
        var ext: WitanClient? = try WitanClient.open(
            config: config, transport: transport, listener: RecordingListener())
        let report = try await ext!.handleWakeup(packets: push)
        XCTAssertEqual(report.notifications.map { $0.body.text }, ["dinner at eight?"])
        XCTAssertFalse(report.deferredWork, "a vote by hand waits for the user, not a deadline")
        XCTAssertEqual(report.spooledPackets, 0)
        XCTAssertTrue(transport.published.isEmpty, "the extension published no vote")
        let open = try await ext!.conversation(conversationId: conv)?.openProposals ?? []
        XCTAssertEqual(open.count, 1)
        ext = nil

        try net[voter].open()
        try await net[voter].c.vote(conversationId: conv, proposalId: open[0].proposalId, approve: true)
        try await net.settle("the newcomer admitted by the app's vote") { try await net.agree([0, 1, 2]) }
        let history = try await net[voter].historyBodies()
        XCTAssertEqual(history, ["dinner at eight?"])
    }

    func testAnEncryptedDatabaseOpensOnlyWithItsKey() async throws {
        let net = try TestNet(0)
        defer { net.close() }
        let path = net.dir.appendingPathComponent("keyed.db").path
        let key = Data(repeating: 7, count: 32)
        func open(_ key: Data?) throws -> WitanClient {
            var config = ClientConfig(databasePath: path, identitySecret: nil)
            config.databaseKey = key
            return try WitanClient.open(config: config, transport: RecordingTransport(), listener: RecordingListener())
        }
        var first: WitanClient? = try open(key)
        _ = try await first!.createConversation(conversationId: conv, settings: fastSettings())
        _ = try await first!.sendMessage(conversationId: conv, body: "secret-recipe".data)
        let id = first!.memberId()
        first = nil

        var onDisk = try Data(contentsOf: URL(fileURLWithPath: path))
        if let wal = try? Data(contentsOf: URL(fileURLWithPath: path + "-wal")) { onDisk.append(wal) }
        XCTAssertNil(onDisk.range(of: "secret-recipe".data))

        XCTAssertThrowsError(try open(Data(repeating: 8, count: 32))) { error in
            guard case let .Storage(reason) = error as? WitanError, reason.contains("wrong key") else {
                return XCTFail("a wrong key: \(error)")
            }
        }
        XCTAssertThrowsError(try open(nil)) { error in
            guard case .Storage = error as? WitanError else { return XCTFail("no key: \(error)") }
        }
        XCTAssertThrowsError(try open(Data(count: 16))) { error in
            guard case .InvalidInput = error as? WitanError else { return XCTFail("a short key: \(error)") }
        }

        let again = try open(key)
        XCTAssertEqual(again.memberId(), id)
        let bodies = try await again.messages(conversationId: conv, afterSeq: nil, limit: 10).map { $0.body.text }
        XCTAssertEqual(bodies, ["secret-recipe"])
    }
}
