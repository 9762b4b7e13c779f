// The client's API contract as a Swift app sees it: typed errors for bad input, the push
// wake-up path, suspend/resume, a Rust panic surfacing as WitanError.Internal, and a host
// Logger that never sees message bodies. Uses the network of Support.swift.
import XCTest
import WitanFFI
@testable import Witan

final class ClientApiTests: XCTestCase {
    func testBindingsMatchTheLibrary() {
        // Checks the contract version and the API checksums; traps on a mismatch.
        uniffiEnsureWitanInitialized()
        XCTAssertGreaterThan(ffi_witan_uniffi_contract_version(), 0)
    }

    func testBadInputThrowsTypedErrors() async throws {
        let net = try TestNet(2)
        defer { net.close() }
        let a = try net[0].c
        let other = try net[1].c.memberId()

        guard case let .NotFound(what) = await witanError({
            try await a.sendMessage(conversationId: "no-such-conversation", body: "x".data)
        }) else { return XCTFail("sendMessage to an unknown conversation") }
        XCTAssertTrue(what.contains("no-such-conversation"), what)
        guard case .NotFound = await witanError({
            try await a.messages(conversationId: "no-such-conversation", afterSeq: nil, limit: 10)
        }) else { return XCTFail("messages of an unknown conversation") }
        guard case .NotFound = await witanError({
            try await a.proposeRemoval(conversationId: "no-such-conversation", memberId: other)
        }) else { return XCTFail("proposeRemoval in an unknown conversation") }

        _ = try await a.createConversation(conversationId: conv, settings: fastSettings())
        guard case .InvalidInput = await witanError({
            try await a.proposeRemoval(conversationId: conv, memberId: "not-a-member-id")
        }) else { return XCTFail("an invalid member id") }
        guard case .InvalidInput = await witanError({
            try await a.proposeRemoval(conversationId: conv, memberId: String(repeating: "ab", count: 19))
        }) else { return XCTFail("a 19-byte member id") }
        guard case .InvalidInput = await witanError({
            try await a.proposeRemoval(conversationId: conv, memberId: a.memberId())
        }) else { return XCTFail("removing yourself is leave()") }
        guard case .NotFound = await witanError({
            try await a.proposeRemoval(conversationId: conv, memberId: other)
        }) else { return XCTFail("not a member of the conversation") }
        guard case .WrongState = await witanError({
            try await a.createConversation(conversationId: conv, settings: fastSettings())
        }) else { return XCTFail("the conversation exists") }

        try await net[1].c.requestToJoin(conversationId: conv)
        guard case let .WrongState(state, _) = await witanError({
            try await net[1].c.sendMessage(conversationId: conv, body: "too early".data)
        }) else { return XCTFail("sending before the join completed") }
        XCTAssertEqual(state, .pendingJoin)

        // A failed call changes nothing.
        let historyA = try await a.messages(conversationId: conv, afterSeq: nil, limit: 10)
        let historyB = try await net[1].c.messages(conversationId: conv, afterSeq: nil, limit: 10)
        XCTAssertTrue(historyA.isEmpty)
        XCTAssertTrue(historyB.isEmpty)

        XCTAssertThrowsError(try WitanClient.open(
            config: ClientConfig(
                databasePath: net.dir.appendingPathComponent("bad.db").path, identitySecret: Data(count: 5)),
            transport: net.router.transport(for: 9),
            listener: RecordingListener()
        )) { error in
            guard case .InvalidInput = error as? WitanError else {
                return XCTFail("a 5-byte identity secret: \(error)")
            }
        }
    }

    func testHandleWakeupReturnsTheNotificationForAMessage() async throws {
        let net = try TestNet(2)
        defer { net.close() }
        try await net.form()
        net[1].close() // the app was killed; the push wakes the notification path
        let messageId = try await net[0].c.sendMessage(conversationId: conv, body: "ping".data)
        try await net.deliver()
        let push = net[1].takeMailbox()
        XCTAssertEqual(push.count, 1)

        try net[1].open()
        let report = try await net[1].c.handleWakeup(packets: push)
        XCTAssertEqual(report.notifications.count, 1)
        let n = try XCTUnwrap(report.notifications.first)
        XCTAssertEqual(n.conversationId, conv)
        XCTAssertEqual(n.sender, try net[0].c.memberId())
        XCTAssertEqual(n.messageId, messageId)
        XCTAssertEqual(n.body.text, "ping")
        let history = try await net[1].historyBodies()
        XCTAssertEqual(history, ["ping"])

        // The same push again shows nothing new.
        let again = try await net[1].c.handleWakeup(packets: push)
        XCTAssertTrue(again.notifications.isEmpty)
    }

    func testSuspendedClientReopensOnTheNextCall() async throws {
        let net = try TestNet(2)
        defer { net.close() }
        try await net.form()
        let b = try net[1].c
        b.suspend()
        // The next call reopens the database transparently.
        let state = try await b.conversation(conversationId: conv)?.state
        XCTAssertEqual(state, .working)
        b.suspend()
        _ = try await net[0].c.sendMessage(conversationId: conv, body: "while suspended".data)
        try await net.deliver() // receive() on the suspended client
        let history = try await net[1].historyBodies()
        XCTAssertEqual(history, ["while suspended"])
        XCTAssertEqual(net[1].receivedBodies(), ["while suspended"])

        b.suspend()
        b.suspend() // twice is fine
        try b.resume()
        try b.resume() // a no-op when open
        _ = try await b.sendMessage(conversationId: conv, body: "after resume".data)
        try await net.settle("member 0 has the reply") {
            try await net[0].historyBodies().contains("after resume")
        }
        b.suspend()
        let poll = try await b.poll()
        XCTAssertEqual(poll.outboxPending, 0)
    }

    func testAPanicBecomesInternalAndTheClientStaysUsable() async throws {
        let net = try TestNet(1)
        defer { net.close() }
        let a = try net[0].c
        _ = try await a.createConversation(conversationId: conv, settings: fastSettings())
        for _ in 0..<2 {
            guard case let .Internal(reason) = await witanError({ try await a.debugForcePanic() }) else {
                return XCTFail("debugForcePanic must throw Internal")
            }
            XCTAssertTrue(reason.contains("forced by debug_force_panic"), reason)
        }
        _ = try await a.sendMessage(conversationId: conv, body: "still alive".data)
        let history = try await net[0].historyBodies()
        let state = try await a.conversation(conversationId: conv)?.state
        XCTAssertEqual(history, ["still alive"])
        XCTAssertEqual(state, .working)
    }

    func testTheLoggerNeverSeesMessageBodies() async throws {
        let logger = CapturingLogger()
        let secret = "zebra-umbrella-7731"
        setLogger(logger: logger, level: .trace)
        defer { setLogger(logger: nil, level: .info) }

        let net = try TestNet(2)
        defer { net.close() }
        try await net.form()
        _ = try await net[0].c.sendMessage(conversationId: conv, body: secret.data)
        try await net.settle("member 1 has the message") { try await net[1].historyBodies() == [secret] }

        let lines = logger.all()
        XCTAssertFalse(lines.isEmpty, "the logger received lines")
        let hex = secret.data.map { String(format: "%02x", $0) }.joined()
        let ids = try net.members.map { try $0.c.memberId() }
        for line in lines {
            XCTAssertFalse(line.contains(secret), "body in a log line: \(line)")
            XCTAssertFalse(line.contains(hex), "hex body in a log line: \(line)")
            for id in ids {
                XCTAssertFalse(line.contains(id), "full member id in a log line: \(line)")
            }
        }
    }
}
