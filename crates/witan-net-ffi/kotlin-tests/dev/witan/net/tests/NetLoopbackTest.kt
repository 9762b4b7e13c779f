// Two apps talk over loopback through witan-net's transport, from Kotlin, with witan and
// witan-net in one native library (libwitan_net_ffi; the JVM property
// uniffi.component.witan.libraryOverride points witan's bindings at it). Alice listens on
// 127.0.0.1 and bob dials her; bob joins by vote and reads alice's chat. Bad settings are a
// NetException.Config, and a packet over the relay limit a TransportException.
package dev.witan.net.tests

import dev.witan.ClientConfig
import dev.witan.ConversationState
import dev.witan.EventListener
import dev.witan.OutboundPacket
import dev.witan.TransportException
import dev.witan.WitanClient
import dev.witan.WitanEvent
import dev.witan.defaultConversationSettings
import dev.witan.net.NetException
import dev.witan.net.NetSettings
import dev.witan.net.WitanNet
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.test.fail

private const val CONV = "kotlin-loopback"

class Recorder : EventListener {
    val events = java.util.Collections.synchronizedList(mutableListOf<WitanEvent>())
    override fun onEvent(event: WitanEvent) { events.add(event) }
}

/** One app: its network and its client, on its own database file. */
class App(dir: File, name: String, settings: NetSettings) : AutoCloseable {
    val net = WitanNet.start(settings)
    val events = Recorder()
    val client = WitanClient.open(
        ClientConfig(databasePath = dir.resolve("$name.db").path), net.transport(), events,
    )
    init { net.attach(client) }
    override fun close() {
        net.stop()
        client.destroy()
        net.destroy()
    }
}

suspend fun waitFor(what: String, apps: List<App>, limitMs: Long = 30_000, done: suspend () -> Boolean) {
    val deadline = System.currentTimeMillis() + limitMs
    while (true) {
        for (a in apps) a.client.poll()
        if (done()) return
        if (System.currentTimeMillis() > deadline) fail("timed out waiting for $what")
        delay(50)
    }
}

class NetLoopbackTest {
    @Test
    fun twoAppsTalkOverLoopbackThroughTheTransport() = runBlocking {
        val dir = Files.createTempDirectory("witan-net-kotlin").toFile()
        try {
            App(dir, "alice", NetSettings(listenAddresses = listOf("/ip4/127.0.0.1/tcp/0"), peers = listOf())).use { alice ->
                val address = alice.net.listenAddresses().single()
                assertTrue(address.startsWith("/ip4/127.0.0.1/tcp/"), address)
                App(dir, "bob", NetSettings(peers = listOf(address))).use { bob ->
                    val apps = listOf(alice, bob)
                    waitFor("the connection", apps) { alice.net.connectedPeers() == 1u && bob.net.connectedPeers() == 1u }
                    val settings = defaultConversationSettings().copy(
                        autoVoteDelayMs = 0uL, commitDelayMs = 100uL, freezeWindowMs = 1_500uL,
                        commitInactivityMs = 4_000uL, recoveryInactivityMs = 3_000uL, voteTimeoutMs = 6_000uL,
                    )
                    alice.client.createConversation(CONV, settings)
                    bob.client.requestToJoin(CONV)
                    waitFor("bob joined", apps) { bob.client.conversation(CONV)?.state == ConversationState.WORKING }
                    alice.client.sendMessage(CONV, "hello from kotlin".encodeToByteArray())
                    waitFor("bob read the chat", apps) {
                        bob.client.messages(CONV, null, 10u).any { it.body.decodeToString() == "hello from kotlin" }
                    }
                    assertTrue(bob.events.events.any { it is WitanEvent.Joined })
                    // No store node here: a catch-up has nothing to ask and delivers nothing.
                    assertEquals(0u, bob.net.catchUp().packets)
                }
            }
            // Both apps' clients and transports came from the one library: libwitan is not
            // even loaded.
            val maps = File("/proc/self/maps").readText()
            assertTrue(maps.contains("/libwitan_net_ffi.so"))
            assertTrue(!maps.contains("/libwitan.so"), "libwitan.so is loaded too")
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun badSettingsAndOversizedPacketsAreRefused() {
        assertFailsWith<NetException.Config> { WitanNet.start(NetSettings(peers = listOf("not an address"))) }
        assertFailsWith<NetException.Config> { WitanNet.start(NetSettings(peers = listOf(), shards = 0u)) }
        val net = WitanNet.start(NetSettings(peers = listOf(), maxPacketBytes = 1_000uL))
        try {
            val big = OutboundPacket(topic = "/witan/1/00/app", payload = ByteArray(1_001), packetId = "00")
            val e = assertFailsWith<TransportException.Unavailable> { net.transport().publish(big) }
            assertTrue(e.reason.contains("over the relay limit"), e.reason)
            val small = big.copy(payload = ByteArray(10))
            val alone = assertFailsWith<TransportException.Unavailable> { net.transport().publish(small) }
            assertTrue(alone.reason.contains("no relay peer"), alone.reason)
        } finally {
            net.stop()
            net.destroy()
        }
    }
}
