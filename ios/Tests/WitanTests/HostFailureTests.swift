// When the host's transport fails: the packet waits in the outbox and a later poll sends it.
// (A Swift EventListener cannot throw; the Kotlin host tests cover throwing callbacks.)
import XCTest
@testable import Witan

final class HostFailureTests: XCTestCase {
    func testAFailedPublishStaysInTheOutboxUntilALaterPoll() async throws {
        let net = try TestNet(2)
        defer { net.close() }
        try await net.form()
        net.router.offline = true
        _ = try await net[0].c.sendMessage(conversationId: conv, body: "queued".data)
        let report = try await net[0].c.poll()
        XCTAssertEqual(report.outboxPending, 1)
        XCTAssertEqual(report.sent, 0)
        let retryAt = try XCTUnwrap(report.nextWakeupAtMs, "the retry is scheduled")
        let now = UInt64(Date().timeIntervalSince1970 * 1_000)
        XCTAssertLessThanOrEqual(retryAt, now + 1_000, "first retry within 1 s")

        net.router.offline = false
        try await net.settle("a later poll sent the message") {
            try await net[1].historyBodies() == ["queued"]
        }
        let after = try await net[0].c.poll()
        XCTAssertEqual(after.outboxPending, 0)
    }
}
