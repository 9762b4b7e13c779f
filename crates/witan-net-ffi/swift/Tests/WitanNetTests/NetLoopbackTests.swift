// Two apps talk over loopback through witan-net's transport, from Swift, with witan and
// witan-net in one native library (libwitan_net_ffi). Alice listens on 127.0.0.1 and bob
// dials her; bob joins by vote and reads alice's chat. Bad settings are a NetError.Config,
// and a packet over the relay limit a TransportError.
import Foundation
import XCTest
@testable import WitanNet

private let conv = "swift-loopback"

final class Recorder: EventListener, @unchecked Sendable {
    private let lock = NSLock()
    private var events: [WitanEvent] = []
    func onEvent(event: WitanEvent) { lock.lock(); events.append(event); lock.unlock() }
    func all() -> [WitanEvent] { lock.lock(); defer { lock.unlock() }; return events }
}

/// One app: its network and its client, on its own database file.
final class App {
    let net: WitanNet
    let client: WitanClient
    let events = Recorder()

    init(dir: URL, name: String, settings: NetSettings) throws {
        net = try WitanNet.start(settings: settings)
        client = try WitanClient.open(
            config: ClientConfig(databasePath: dir.appendingPathComponent("\(name).db").path),
            transport: net.transport(), listener: events)
        net.attach(client: client)
    }
}

private func waitFor(_ what: String, _ apps: [App], seconds: Double = 30,
                     _ done: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        for app in apps { _ = try await app.client.poll() }
        if try await done() { return }
        if Date() > deadline { throw NSError(domain: "timed out waiting for \(what)", code: 1) }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
}

final class NetLoopbackTests: XCTestCase {
    func testTwoAppsTalkOverLoopbackThroughTheTransport() async throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("witan-net-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let alice = try App(dir: dir, name: "alice",
                            settings: NetSettings(listenAddresses: ["/ip4/127.0.0.1/tcp/0"], peers: []))
        defer { alice.net.stop() }
        let address = try XCTUnwrap(alice.net.listenAddresses().first)
        XCTAssertTrue(address.hasPrefix("/ip4/127.0.0.1/tcp/"), address)
        let bob = try App(dir: dir, name: "bob", settings: NetSettings(peers: [address]))
        defer { bob.net.stop() }
        let apps = [alice, bob]
        try await waitFor("the connection", apps) {
            alice.net.connectedPeers() == 1 && bob.net.connectedPeers() == 1
        }

        var settings = defaultConversationSettings()
        settings.autoVoteDelayMs = 0
        settings.commitDelayMs = 100
        settings.freezeWindowMs = 1_500
        settings.commitInactivityMs = 4_000
        settings.recoveryInactivityMs = 3_000
        settings.voteTimeoutMs = 6_000
        _ = try await alice.client.createConversation(conversationId: conv, settings: settings)
        try await bob.client.requestToJoin(conversationId: conv)
        try await waitFor("bob joined", apps) {
            try await bob.client.conversation(conversationId: conv)?.state == .working
        }
        _ = try await alice.client.sendMessage(conversationId: conv, body: Data("hello from swift".utf8))
        try await waitFor("bob read the chat", apps) {
            try await bob.client.messages(conversationId: conv, afterSeq: nil, limit: 10)
                .contains { String(decoding: $0.body, as: UTF8.self) == "hello from swift" }
        }
        XCTAssertTrue(bob.events.all().contains {
            if case .joined = $0 { return true } else { return false }
        })
        // No store node here: a catch-up has nothing to ask and delivers nothing.
        let report = try await bob.net.catchUp()
        XCTAssertEqual(report.packets, 0)
        // Both apps' clients and transports come from the one library: libwitan is not
        // even loaded.
        // (/proc files report a size of 0: read them to their end, not to their size.)
        let file = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/maps"))
        let maps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(maps.contains("/libwitan_net_ffi.so"))
        XCTAssertFalse(maps.contains("/libwitan.so"), "libwitan.so is loaded too")
    }

    func testBadSettingsAndOversizedPacketsAreRefused() throws {
        XCTAssertThrowsError(try WitanNet.start(settings: NetSettings(peers: ["not an address"]))) {
            guard case NetError.Config = $0 else { return XCTFail("\($0)") }
        }
        let net = try WitanNet.start(settings: NetSettings(peers: [], maxPacketBytes: 1_000))
        defer { net.stop() }
        let big = OutboundPacket(topic: "/witan/1/00/app", payload: Data(count: 1_001), packetId: "00")
        XCTAssertThrowsError(try net.transport().publish(packet: big)) {
            guard case let TransportError.Unavailable(reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("over the relay limit"), reason)
        }
    }
}
