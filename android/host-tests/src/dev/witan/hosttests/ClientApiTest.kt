// The client's API contract as a Kotlin app sees it: typed exceptions for bad input, the
// push wake-up path, suspend/resume, a Rust panic surfacing as WitanException.Internal, and a
// host Logger that never sees message bodies. Uses the network of Support.kt.
package dev.witan.hosttests

import dev.witan.ClientConfig
import dev.witan.ConversationState
import dev.witan.LogLevel
import dev.witan.Logger
import dev.witan.WitanClient
import dev.witan.WitanException
import dev.witan.setLogger
import dev.witan.uniffiEnsureInitialized
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

class ClientApiTest {
    @Test
    fun bindingsMatchTheLibrary() {
        // Checks the contract version and the API checksums of the loaded libwitan.
        uniffiEnsureInitialized()
    }

    @Test
    fun badInputThrowsTypedExceptions(): Unit = runBlocking {
        TestNet(2).use { net ->
            val a = net[0].c
            val notFound = assertFailsWith<WitanException.NotFound> {
                a.sendMessage("no-such-conversation", "x".encodeToByteArray())
            }
            assertContains(notFound.what, "no-such-conversation")
            assertFailsWith<WitanException.NotFound> { a.messages("no-such-conversation", null, 10u) }
            assertFailsWith<WitanException.NotFound> {
                a.proposeRemoval("no-such-conversation", net[1].c.memberId())
            }

            a.createConversation(CONV, fastSettings())
            assertFailsWith<WitanException.InvalidInput> { a.proposeRemoval(CONV, "not-a-member-id") }
            assertFailsWith<WitanException.InvalidInput> { a.proposeRemoval(CONV, "ab".repeat(19)) }
            assertFailsWith<WitanException.InvalidInput>("removing yourself is leave()") {
                a.proposeRemoval(CONV, a.memberId())
            }
            assertFailsWith<WitanException.NotFound>("not a member of the conversation") {
                a.proposeRemoval(CONV, net[1].c.memberId())
            }
            assertFailsWith<WitanException.WrongState>("it exists") { a.createConversation(CONV, fastSettings()) }

            net[1].c.requestToJoin(CONV)
            val early = assertFailsWith<WitanException.WrongState> {
                net[1].c.sendMessage(CONV, "too early".encodeToByteArray())
            }
            assertEquals(ConversationState.PENDING_JOIN, early.state)

            // A failed call changes nothing.
            assertTrue(a.messages(CONV, null, 10u).isEmpty())
            assertTrue(net[1].c.messages(CONV, null, 10u).isEmpty())

            assertFailsWith<WitanException.InvalidInput>("a 5-byte identity secret") {
                WitanClient.open(
                    ClientConfig(databasePath = net.dir.resolve("bad.db").path, identitySecret = ByteArray(5)),
                    net.router.transportFor(9),
                    RecordingListener(),
                )
            }
        }
    }

    @Test
    fun handleWakeupReturnsTheNotificationForAMessage() = runBlocking {
        TestNet(2).use { net ->
            net.form()
            net[1].close() // the app was killed; the push wakes the notification path
            val messageId = net[0].c.sendMessage(CONV, "ping".encodeToByteArray())
            net.deliver()
            val push = net[1].takeMailbox()
            assertEquals(1, push.size)

            net[1].open()
            val report = net[1].c.handleWakeup(push)
            val n = report.notifications.single()
            assertEquals(CONV, n.conversationId)
            assertEquals(net[0].c.memberId(), n.sender)
            assertEquals(messageId, n.messageId)
            assertEquals("ping", n.body.decodeToString())
            assertEquals(listOf("ping"), net[1].historyBodies())

            // The same push again shows nothing new.
            assertTrue(net[1].c.handleWakeup(push).notifications.isEmpty())
        }
    }

    @Test
    fun suspendedClientReopensOnTheNextCall() = runBlocking {
        TestNet(2).use { net ->
            net.form()
            val b = net[1].c
            b.suspend()
            // The next call reopens the database transparently.
            assertEquals(ConversationState.WORKING, assertNotNull(b.conversation(CONV)).state)
            b.suspend()
            net[0].c.sendMessage(CONV, "while suspended".encodeToByteArray())
            net.deliver() // receive() on the suspended client
            assertEquals(listOf("while suspended"), net[1].historyBodies())
            assertEquals(listOf("while suspended"), net[1].receivedBodies())

            b.suspend()
            b.suspend() // twice is fine
            b.resume()
            b.resume() // a no-op when open
            b.sendMessage(CONV, "after resume".encodeToByteArray())
            net.settle("member 0 has the reply") { net[0].historyBodies().contains("after resume") }
            b.suspend()
            assertEquals(0u, b.poll().outboxPending)
        }
    }

    @Test
    fun aPanicBecomesInternalAndTheClientStaysUsable() = runBlocking {
        TestNet(1).use { net ->
            val a = net[0].c
            a.createConversation(CONV, fastSettings())
            repeat(2) {
                val e = assertFailsWith<WitanException.Internal> { a.debugForcePanic() }
                assertContains(e.reason, "forced by debug_force_panic")
            }
            a.sendMessage(CONV, "still alive".encodeToByteArray())
            assertEquals(listOf("still alive"), net[0].historyBodies())
            assertEquals(ConversationState.WORKING, assertNotNull(a.conversation(CONV)).state)
        }
    }

    @Test
    fun theLoggerNeverSeesMessageBodies() = runBlocking {
        val lines = ArrayList<String>()
        val logger = object : Logger {
            override fun log(level: LogLevel, target: String, message: String) {
                synchronized(lines) { lines.add("$level $target $message") }
            }
        }
        val secret = "zebra-umbrella-7731"
        setLogger(logger, LogLevel.TRACE)
        try {
            TestNet(2).use { net ->
                net.form()
                net[0].c.sendMessage(CONV, secret.encodeToByteArray())
                net.settle("member 1 has the message") { net[1].historyBodies() == listOf(secret) }
                val logged = synchronized(lines) { lines.toList() }
                assertTrue(logged.isNotEmpty(), "the logger received lines")
                val hex = secret.encodeToByteArray().joinToString("") { "%02x".format(it) }
                for (line in logged) {
                    assertFalse(line.contains(secret), "body in a log line: $line")
                    assertFalse(line.contains(hex), "hex body in a log line: $line")
                    for (m in net.members) {
                        assertFalse(line.contains(m.c.memberId()), "full member id in a log line: $line")
                    }
                }
            }
        } finally {
            setLogger(null, LogLevel.INFO)
        }
    }
}
