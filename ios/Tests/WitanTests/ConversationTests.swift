// Group scenarios through the generated Swift bindings: three members join by vote, chat,
// remove a member, and one member restarts from its database file. Each member is a real
// WitanClient on its own SQLite file; packets travel through the in-process Router
// (Support.swift) and time is the wall clock.
import XCTest
@testable import Witan

final class ConversationTests: XCTestCase {
    func testThreeMembersJoinByVote() async throws {
        let net = try TestNet(3)
        defer { net.close() }
        try await net.form()

        let ids = try (0..<3).map { try net[$0].c.memberId() }.sorted()
        var infos: [ConversationInfo] = []
        for i in 0..<3 { infos.append(try await XCTUnwrapAsync("member \(i)") { try await net[i].info() }) }
        for (i, info) in infos.enumerated() {
            XCTAssertEqual(info.state, .working, "member \(i)")
            XCTAssertEqual(info.epoch, infos[0].epoch, "member \(i)")
            XCTAssertGreaterThanOrEqual(info.epoch, 1, "member \(i): the joins were committed")
            XCTAssertEqual(info.members.map { $0.memberId }.sorted(), ids, "member \(i)")
            XCTAssertEqual(info.stewards, infos[0].stewards, "member \(i) agrees on the stewards")
        }
        for i in 1..<3 {
            let joined = net[i].events().filter {
                if case .joined = $0 { return true }
                return false
            }
            XCTAssertEqual(joined, [.joined(conversationId: conv)], "member \(i) heard Joined once")
            XCTAssertEqual(try net[i].c.subscriptions().sorted(), try net[0].c.subscriptions().sorted())
            XCTAssertEqual(Set(try net[i].c.subscriptions()), net.router.topics(of: i), "transport told")
        }
        let added = net[0].events().flatMap { event -> [String] in
            if case let .membershipChanged(_, _, added, _) = event { return added }
            return []
        }
        let creator = try net[0].c.memberId()
        XCTAssertEqual(added.sorted(), ids.filter { $0 != creator }, "the creator heard both joiners added")
    }

    func testEveryMemberReceivesTheOthersMessagesExactlyOnce() async throws {
        let net = try TestNet(3)
        defer { net.close() }
        try await net.form()

        let bodies = (0..<3).map { "hello from member \($0)" }
        var messageIds: [String] = []
        for i in 0..<3 {
            messageIds.append(try await net[i].c.sendMessage(conversationId: conv, body: bodies[i].data))
        }
        try await net.settle("every history holds three messages") {
            for i in 0..<3 where try await net[i].history().count != 3 { return false }
            return true
        }
        // A few more rounds: late duplicates must not add anything.
        for _ in 0..<3 {
            try await net.deliver()
            try await net.pollAll()
        }
        for i in 0..<3 {
            let others = bodies.enumerated().filter { $0.offset != i }.map { $0.element }
            XCTAssertEqual(net[i].receivedBodies().sorted(), others.sorted(), "events of member \(i)")
            let history = try await net[i].history()
            XCTAssertEqual(history.map { $0.body.text }.sorted(), bodies.sorted(), "history of \(i)")
            XCTAssertEqual(history.map { $0.seq }, [1, 2, 3], "sequence numbers of \(i)")
            for m in history {
                let sender = try XCTUnwrap(bodies.firstIndex(of: m.body.text))
                XCTAssertEqual(m.sender, try net[sender].c.memberId(), "sender of \(m.messageId)")
                XCTAssertEqual(m.messageId, messageIds[sender])
                XCTAssertEqual(m.own, sender == i, "own flag of \(m.messageId) at \(i)")
                XCTAssertEqual(m.conversationId, conv)
            }
        }
        // Paging: afterSeq skips the first message.
        let page = try await net[1].c.messages(conversationId: conv, afterSeq: 1, limit: 10)
        XCTAssertEqual(page.map { $0.seq }, [2, 3])
    }

    func testAMemberIsRemovedByVote() async throws {
        // No automatic votes: the harness approves the joins; the removal is voted by hand.
        let net = try TestNet(3, approveVotes: true)
        defer { net.close() }
        try await net.form(fastSettings(autoVote: false))

        let target = try net[2].c.memberId()
        let proposalId = try await net[0].c.proposeRemoval(conversationId: conv, memberId: target)
        try await net.settle("members 1 and 2 are asked to vote on the removal") {
            net[1].voteRequest(proposalId) != nil && net[2].voteRequest(proposalId) != nil
        }
        let request = try XCTUnwrap(net[1].voteRequest(proposalId))
        XCTAssertEqual(request.kind, .removeMember)
        XCTAssertEqual(request.target, target)
        XCTAssertEqual(request.proposer, try net[0].c.memberId())
        // The proposer's yes travels with the proposal: it is not asked.
        XCTAssertNil(net[0].voteRequest(proposalId))
        // The target votes against, member 1 for: 2 of 3 approve.
        try await net[2].c.vote(conversationId: conv, proposalId: proposalId, approve: false)
        try await net[1].c.vote(conversationId: conv, proposalId: proposalId, approve: true)

        try await net.settle("member 2 removed") {
            guard try await net[2].info()?.state == .left else { return false }
            return try await net.agree([0, 1])
        }
        for i in 0..<2 {
            let info = try await XCTUnwrapAsync("member \(i)") { try await net[i].info() }
            XCTAssertEqual(info.members.count, 2, "member \(i)")
            XCTAssertFalse(info.members.contains { $0.memberId == target }, "member \(i)")
        }
        let leftEvents = net[2].events().filter {
            if case .left = $0 { return true }
            return false
        }
        XCTAssertEqual(leftEvents, [.left(conversationId: conv, reason: .removed)])
        XCTAssertTrue(
            net[0].events().contains(.proposalResolved(conversationId: conv, proposalId: proposalId, approved: true)),
            "the proposer heard the approval")
        XCTAssertTrue(try net[2].c.subscriptions().isEmpty, "the removed member follows no topic")
    }

    func testARestartedMemberKeepsItsIdentityAndKeepsChatting() async throws {
        let net = try TestNet(3)
        defer { net.close() }
        try await net.form()
        let b = net[1]
        let idBefore = try b.c.memberId()
        _ = try await net[0].c.sendMessage(conversationId: conv, body: "before".data)
        try await net.settle("member 1 has the first message") { try await b.historyBodies() == ["before"] }

        b.close()
        _ = try await net[0].c.sendMessage(conversationId: conv, body: "while away".data)
        _ = try await net[2].c.sendMessage(conversationId: conv, body: "me too".data)
        try await net.deliver()
        XCTAssertEqual(b.mailbox.count, 2, "packets wait for the closed member")

        try b.open()
        XCTAssertEqual(try b.c.memberId(), idBefore, "same identity from the same file")
        let info = try await XCTUnwrapAsync("the conversation is still there") { try await b.info() }
        XCTAssertEqual(info.members.count, 3)
        let conversations = try await b.c.conversations()
        XCTAssertEqual(conversations.map { $0.conversationId }, [conv])
        let report = try await b.c.receive(packets: b.takeMailbox())
        XCTAssertEqual(report.accepted, 2)
        let history = try await b.historyBodies()
        XCTAssertEqual(history.sorted(), ["before", "me too", "while away"])

        _ = try await b.c.sendMessage(conversationId: conv, body: "back".data)
        try await net.settle("the others have the message sent after the restart") {
            let a = try await net[0].historyBodies()
            let c = try await net[2].historyBodies()
            return a.contains("back") && c.contains("back")
        }
        let agreed = try await net.agree([0, 1, 2])
        XCTAssertTrue(agreed)
    }
}
