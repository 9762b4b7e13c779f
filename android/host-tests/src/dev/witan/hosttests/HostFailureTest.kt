// When the host's side fails: a transport that cannot publish (the packet waits in the
// outbox and a later poll sends it), and host callbacks that throw where the API declares no
// error (the call that caused them still succeeds, since its step is already stored).
package dev.witan.hosttests

import dev.witan.ClientConfig
import dev.witan.EventListener
import dev.witan.InboundPacket
import dev.witan.OutboundPacket
import dev.witan.Transport
import dev.witan.WitanClient
import dev.witan.WitanEvent
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

class HostFailureTest {
    @Test
    fun aFailedPublishStaysInTheOutboxUntilALaterPoll() = runBlocking {
        TestNet(2).use { net ->
            net.form()
            net.router.offline = true
            net[0].c.sendMessage(CONV, "queued".encodeToByteArray())
            val report = net[0].c.poll()
            assertEquals(1u, report.outboxPending)
            assertEquals(0u, report.sent)
            val retryAt = assertNotNull(report.nextWakeupAtMs, "the retry is scheduled")
            assertTrue(retryAt <= System.currentTimeMillis().toULong() + 1_000uL, "first retry within 1 s")

            net.router.offline = false
            net.settle("a later poll sent the message") { net[1].historyBodies() == listOf("queued") }
            assertEquals(0u, net[0].c.poll().outboxPending)
        }
    }

    @Test
    fun throwingHostCallbacksDoNotFailACommittedCall() = runBlocking {
        TestNet(2).use { net ->
            net.form()
            net[1].close()
            val listener = object : EventListener {
                override fun onEvent(event: WitanEvent) {
                    throw IllegalStateException("host listener bug")
                }
            }
            val transport = object : Transport {
                override fun publish(packet: OutboundPacket) {
                    throw IllegalStateException("host transport bug")
                }
                override fun subscribe(topic: String) {
                    throw IllegalStateException("host transport bug")
                }
                override fun unsubscribe(topic: String) {
                    throw IllegalStateException("host transport bug")
                }
            }
            // subscribe() throws while opening: the client opens anyway.
            WitanClient.open(ClientConfig(databasePath = net[1].databasePath), transport, listener).use { b ->
                net[0].c.sendMessage(CONV, "hi".encodeToByteArray())
                var accepted = 0u
                while (true) {
                    val (topic, payload) = net.router.next() ?: break
                    // on_event throws for the MessageReceived event: receive still succeeds.
                    accepted += b.receive(listOf(InboundPacket(topic = topic, payload = payload))).accepted
                }
                assertEquals(1u, accepted)
                assertEquals(listOf("hi"), b.messages(CONV, null, 10u).map { it.body.decodeToString() })
                // publish throws: the reply stays in the outbox, and the call succeeds.
                b.sendMessage(CONV, "reply".encodeToByteArray())
                assertEquals(1u, b.poll().outboxPending)
            }
        }
    }
}
