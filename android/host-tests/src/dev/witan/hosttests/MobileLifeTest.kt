// Mobile life as a Kotlin app sees it: a client in the notification-extension role shows the
// pushed message and leaves the protocol work (here: an automatic vote) to the app, and a
// database encrypted with a host-held key keeps working across restarts while a wrong key is
// a typed exception. Uses the network of Support.kt.
package dev.witan.hosttests

import dev.witan.ClientConfig
import dev.witan.ClientRole
import dev.witan.OutboundPacket
import dev.witan.Transport
import dev.witan.WitanClient
import dev.witan.WitanException
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import java.io.File
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

/** A transport that only records what it is asked to publish. */
class RecordingTransport : Transport {
    val published = ArrayList<OutboundPacket>()

    override fun publish(packet: OutboundPacket) {
        synchronized(published) { published.add(packet) }
    }

    override fun subscribe(topic: String) {}

    override fun unsubscribe(topic: String) {}
}

class MobileLifeTest {
    @Test
    fun theExtensionNotifiesAndLeavesTheVoteToTheApp() = runBlocking {
        TestNet(3).use { net ->
            // Votes by hand: the extension casts only automatic votes that are due.
            net[0].c.createConversation(CONV, fastSettings(autoVote = false))
            net[1].c.requestToJoin(CONV)
            net.settle("two members") { net.agree(listOf(0, 1)) }
            // The epoch steward proposes the newcomer; the other member must vote.
            val steward = assertNotNull(net[0].info()).epochSteward
            val (proposer, voter) = if (net[0].c.memberId() == steward) 0 to 1 else 1 to 0

            net[voter].close() // the app is suspended; the push goes to the extension
            net[proposer].c.sendMessage(CONV, "dinner at eight?".encodeToByteArray())
            net[2].c.requestToJoin(CONV)
            net.deliver()
            val push = net[voter].takeMailbox()

            val transport = RecordingTransport()
            val extension = WitanClient.open(
                ClientConfig(
                    databasePath = net[voter].databasePath,
                    identitySecret = null,
                    role = ClientRole.NOTIFICATION_EXTENSION,
                ),
                transport,
                RecordingListener(),
            )
            val report = extension.handleWakeup(push)
            assertEquals(listOf("dinner at eight?"), report.notifications.map { it.body.decodeToString() })
            assertFalse(report.deferredWork, "a vote by hand waits for the user, not a deadline")
            assertEquals(0u, report.spooledPackets)
            assertTrue(transport.published.isEmpty(), "the extension published no vote")
            val open = assertNotNull(extension.conversation(CONV)).openProposals
            assertEquals(1, open.size)
            extension.close()

            net[voter].open()
            net[voter].c.vote(CONV, open[0].proposalId, true)
            net.settle("the newcomer admitted by the app's vote") { net.agree(listOf(0, 1, 2)) }
            assertEquals(listOf("dinner at eight?"), net[voter].historyBodies())
        }
    }

    @Test
    fun anEncryptedDatabaseOpensOnlyWithItsKey() = runBlocking {
        TestNet(0).use { net ->
            val path = File(net.dir, "keyed.db").path
            val key = ByteArray(32) { 7 }
            fun open(k: ByteArray?) = WitanClient.open(
                ClientConfig(databasePath = path, identitySecret = null, databaseKey = k),
                RecordingTransport(),
                RecordingListener(),
            )
            val first = open(key)
            first.createConversation(CONV, fastSettings())
            first.sendMessage(CONV, "secret-recipe".encodeToByteArray())
            val id = first.memberId()
            first.close()

            val onDisk = File(path).readBytes() + (File("$path-wal").takeIf { it.exists() }?.readBytes() ?: ByteArray(0))
            assertFalse(onDisk.decodeToString(throwOnInvalidSequence = false).contains("secret-recipe"))

            val wrong = assertFailsWith<WitanException.Storage> { open(ByteArray(32) { 8 }) }
            assertContains(wrong.reason, "wrong key")
            assertFailsWith<WitanException.Storage> { open(null) }
            assertFailsWith<WitanException.InvalidInput> { open(ByteArray(16)) }

            val again = open(key)
            assertEquals(id, again.memberId())
            assertEquals(listOf("secret-recipe"), again.messages(CONV, null, 10u).map { it.body.decodeToString() })
            again.close()
        }
    }
}
