// Group scenarios through the generated Kotlin bindings: three members join by vote, chat,
// remove a member, and one member restarts from its database file. Each member is a real
// WitanClient on its own SQLite file; packets travel through the in-process Router
// (Support.kt) and time is the wall clock.
package dev.witan.hosttests

import dev.witan.ConversationState
import dev.witan.LeaveReason
import dev.witan.ProposalKind
import dev.witan.WitanEvent
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

class ConversationTest {
    @Test
    fun threeMembersJoinByVote() = runBlocking {
        TestNet(3).use { net ->
            net.form()
            val infos = (0..2).map { assertNotNull(net[it].info()) }
            val ids = (0..2).map { net[it].c.memberId() }.sorted()
            for ((i, info) in infos.withIndex()) {
                assertEquals(ConversationState.WORKING, info.state, "member $i")
                assertEquals(infos[0].epoch, info.epoch, "member $i")
                assertTrue(info.epoch >= 1uL, "member $i: the joins were committed")
                assertEquals(ids, info.members.map { it.memberId }.sorted(), "member $i")
                assertEquals(infos[0].stewards, info.stewards, "member $i agrees on the stewards")
            }
            for (i in 1..2) {
                val joined = net[i].events().filterIsInstance<WitanEvent.Joined>()
                assertEquals(listOf(WitanEvent.Joined(CONV)), joined, "member $i heard Joined once")
                assertEquals(net[0].c.subscriptions().sorted(), net[i].c.subscriptions().sorted())
                assertEquals(net[i].c.subscriptions().toSet(), net.router.topicsOf(i), "transport told")
            }
            val added = net[0].events().filterIsInstance<WitanEvent.MembershipChanged>().flatMap { it.added }
            assertEquals(ids - net[0].c.memberId(), added.sorted(), "the creator heard both joiners added")
        }
    }

    @Test
    fun everyMemberReceivesTheOthersMessagesExactlyOnce() = runBlocking {
        TestNet(3).use { net ->
            net.form()
            val bodies = (0..2).map { "hello from member $it" }
            val ids = (0..2).map { net[it].c.sendMessage(CONV, bodies[it].encodeToByteArray()) }
            net.settle("every history holds three messages") {
                (0..2).all { net[it].history().size == 3 }
            }
            // A few more rounds: late duplicates must not add anything.
            repeat(3) { net.deliver(); net.pollAll() }
            for (i in 0..2) {
                val others = bodies.filterIndexed { j, _ -> j != i }
                assertEquals(others.sorted(), net[i].receivedBodies().sorted(), "events of member $i")
                val history = net[i].history()
                assertEquals(bodies.sorted(), history.map { it.body.decodeToString() }.sorted(), "history of $i")
                assertEquals(listOf(1uL, 2uL, 3uL), history.map { it.seq }, "sequence numbers of $i")
                for (m in history) {
                    val sender = bodies.indexOf(m.body.decodeToString())
                    assertEquals(net[sender].c.memberId(), m.sender, "sender of ${m.messageId}")
                    assertEquals(ids[sender], m.messageId)
                    assertEquals(sender == i, m.own, "own flag of ${m.messageId} at $i")
                    assertEquals(CONV, m.conversationId)
                }
            }
            // Paging: after_seq skips the first message.
            assertEquals(listOf(2uL, 3uL), net[1].c.messages(CONV, 1uL, 10u).map { it.seq })
        }
    }

    @Test
    fun aMemberIsRemovedByVote() = runBlocking {
        // No automatic votes: the harness approves the joins; the removal is voted by hand.
        TestNet(3, approveVotes = true).use { net ->
            net.form(fastSettings(autoVote = false))
            val target = net[2].c.memberId()
            val proposalId = net[0].c.proposeRemoval(CONV, target)
            fun Member.request() = events().filterIsInstance<WitanEvent.VoteRequested>()
                .singleOrNull { it.proposal.proposalId == proposalId }
            net.settle("members 1 and 2 are asked to vote on the removal") {
                net[1].request() != null && net[2].request() != null
            }
            val request = assertNotNull(net[1].request())
            assertEquals(ProposalKind.REMOVE_MEMBER, request.proposal.kind)
            assertEquals(target, request.proposal.target)
            assertEquals(net[0].c.memberId(), request.proposal.proposer)
            // The proposer's yes travels with the proposal: it is not asked.
            assertNull(net[0].request())
            // The target votes against, member 1 for: 2 of 3 approve.
            net[2].c.vote(CONV, proposalId, false)
            net[1].c.vote(CONV, proposalId, true)

            net.settle("member 2 removed") {
                net[2].info()?.state == ConversationState.LEFT && net.agree(listOf(0, 1))
            }
            for (i in 0..1) {
                val info = assertNotNull(net[i].info())
                assertEquals(2, info.members.size, "member $i")
                assertFalse(info.members.any { it.memberId == target }, "member $i")
            }
            assertEquals(
                listOf(WitanEvent.Left(CONV, LeaveReason.REMOVED)),
                net[2].events().filterIsInstance<WitanEvent.Left>(),
            )
            assertTrue(
                net[0].events().contains(WitanEvent.ProposalResolved(CONV, proposalId, true)),
                "the proposer heard the approval",
            )
            assertTrue(net[2].c.subscriptions().isEmpty(), "the removed member follows no topic")
        }
    }

    @Test
    fun aRestartedMemberKeepsItsIdentityAndKeepsChatting() = runBlocking {
        TestNet(3).use { net ->
            net.form()
            val b = net[1]
            val idBefore = b.c.memberId()
            net[0].c.sendMessage(CONV, "before".encodeToByteArray())
            net.settle("member 1 has the first message") { b.historyBodies() == listOf("before") }

            b.close()
            net[0].c.sendMessage(CONV, "while away".encodeToByteArray())
            net[2].c.sendMessage(CONV, "me too".encodeToByteArray())
            net.deliver()
            assertEquals(2, b.mailbox.size, "packets wait for the closed member")

            b.open()
            assertEquals(idBefore, b.c.memberId(), "same identity from the same file")
            val info = assertNotNull(b.info(), "the conversation is still there")
            assertEquals(3, info.members.size)
            assertEquals(listOf(CONV), b.c.conversations().map { it.conversationId })
            val report = b.c.receive(b.takeMailbox())
            assertEquals(2u, report.accepted)
            assertEquals(listOf("before", "me too", "while away"), b.historyBodies().sorted())

            b.c.sendMessage(CONV, "back".encodeToByteArray())
            net.settle("the others have the message sent after the restart") {
                net[0].historyBodies().contains("back") && net[2].historyBodies().contains("back")
            }
            assertTrue(net.agree(listOf(0, 1, 2)))
        }
    }
}
