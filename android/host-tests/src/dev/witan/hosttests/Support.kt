// Test support for the JVM host tests: an in-process network of witan clients driven through
// the generated Kotlin bindings, with the wall clock.
//
// - Router: the "network". A FIFO queue of published packets and, per member, the topics the
//   client asked to follow (Transport.subscribe / unsubscribe). Callbacks arrive on Rust
//   threads, so every access is synchronized.
// - Member: one client with its own database file, its event log and a mailbox that collects
//   the packets delivered while the client is closed.
// - TestNet: a temporary directory, the router and the members; `deliver` hands every queued
//   packet to every subscribed member's receive() (the sender included: its echo must be a
//   duplicate), `settle` alternates deliver/poll with short sleeps until a condition holds.
//
// Time is the wall clock, so conversations use small settings (fastSettings) and every wait
// is a bounded loop.
package dev.witan.hosttests

import dev.witan.ClientConfig
import dev.witan.ConversationInfo
import dev.witan.ConversationSettings
import dev.witan.ConversationState
import dev.witan.EventListener
import dev.witan.InboundPacket
import dev.witan.OutboundPacket
import dev.witan.ProposalKind
import dev.witan.StoredMessage
import dev.witan.Transport
import dev.witan.TransportException
import dev.witan.WitanClient
import dev.witan.WitanEvent
import dev.witan.WitanException
import dev.witan.defaultConversationSettings
import kotlinx.coroutines.delay
import java.io.File
import java.nio.file.Files
import kotlin.test.fail

const val CONV = "garden-club"

/**
 * Conversation settings for wall-clock tests: votes at once, commits after 50 ms, and a
 * missing commit (for example when the epoch steward itself is removed: it never commits its
 * own removal) is recovered by a freeze round after 1.5 s instead of 30 s.
 */
fun fastSettings(autoVote: Boolean = true): ConversationSettings =
    defaultConversationSettings().copy(
        pendingJoinTimeoutMs = 60_000uL,
        commitInactivityMs = 1_500uL,
        recoveryInactivityMs = 1_000uL,
        freezeWindowMs = 500uL,
        voteTimeoutMs = 5_000uL,
        autoVoteDelayMs = if (autoVote) 0uL else null,
        commitDelayMs = 50uL,
        maxClockSkewMs = 5_000uL,
    )

/** The in-process network: a FIFO of published packets and each member's topics. */
class Router {
    private val queue = ArrayDeque<Pair<String, ByteArray>>()
    private val topics = HashMap<Int, MutableSet<String>>()

    /** While true, publish fails with TransportException.Unavailable (packets stay in the outbox). */
    @Volatile
    var offline = false

    fun transportFor(member: Int): Transport = object : Transport {
        override fun publish(packet: OutboundPacket) {
            if (offline) throw TransportException.Unavailable("router offline")
            synchronized(this@Router) { queue.addLast(packet.topic to packet.payload) }
        }

        override fun subscribe(topic: String) {
            synchronized(this@Router) { topics.getOrPut(member) { HashSet() }.add(topic) }
        }

        override fun unsubscribe(topic: String) {
            synchronized(this@Router) { topics[member]?.remove(topic) }
        }
    }

    @Synchronized
    fun next(): Pair<String, ByteArray>? = queue.removeFirstOrNull()

    @Synchronized
    fun isSubscribed(member: Int, topic: String): Boolean = topics[member]?.contains(topic) == true

    @Synchronized
    fun topicsOf(member: Int): Set<String> = topics[member]?.toSet() ?: emptySet()
}

/** Records every event the client reports. */
class RecordingListener : EventListener {
    private val events = ArrayList<WitanEvent>()

    override fun onEvent(event: WitanEvent) {
        synchronized(events) { events.add(event) }
    }

    fun all(): List<WitanEvent> = synchronized(events) { events.toList() }
}

/** One member: a client on its own database file (null while closed). */
class Member(val index: Int, val databasePath: String, private val router: Router) {
    val listener = RecordingListener()
    val mailbox = ArrayList<ByteArray>()
    var client: WitanClient? = null
        private set

    /** The open client; fails the test if it is closed. */
    val c: WitanClient get() = client ?: fail("member $index is closed")

    fun open(): WitanClient {
        val opened = WitanClient.open(
            ClientConfig(databasePath = databasePath, identitySecret = null),
            router.transportFor(index),
            listener,
        )
        client = opened
        return opened
    }

    /** Drops the client (frees the Rust object and its database handle), like a killed app. */
    fun close() {
        client?.close()
        client = null
    }

    fun takeMailbox(): List<InboundPacket> {
        val packets = mailbox.map { InboundPacket(topic = "", payload = it) }
        mailbox.clear()
        return packets
    }

    fun events(): List<WitanEvent> = listener.all()

    /** Bodies of the MessageReceived events, as strings. */
    fun receivedBodies(): List<String> =
        events().filterIsInstance<WitanEvent.MessageReceived>().map { it.message.body.decodeToString() }

    suspend fun info(conversationId: String = CONV): ConversationInfo? = c.conversation(conversationId)

    suspend fun history(conversationId: String = CONV): List<StoredMessage> =
        c.messages(conversationId, null, 1_000u)

    suspend fun historyBodies(conversationId: String = CONV): List<String> =
        history(conversationId).map { it.body.decodeToString() }

    /** Votes yes on every add-member or steward-election proposal it was asked about. */
    suspend fun approveOpenVotes() {
        val client = client ?: return
        for (e in events().filterIsInstance<WitanEvent.VoteRequested>()) {
            if (e.proposal.kind != ProposalKind.ADD_MEMBER && e.proposal.kind != ProposalKind.STEWARD_ELECTION) continue
            val open = client.conversation(e.conversationId)?.openProposals.orEmpty()
            if (open.none { it.proposalId == e.proposal.proposalId }) continue
            try {
                client.vote(e.conversationId, e.proposal.proposalId, true)
            } catch (_: WitanException) {
                // Already voted, or decided meanwhile.
            }
        }
    }
}

/** A temporary directory, a router and `size` members, all opened. */
class TestNet(size: Int, private val approveVotes: Boolean = false) : AutoCloseable {
    val dir: File = Files.createTempDirectory("witan-kotlin-").toFile()
    val router = Router()
    val members = List(size) { Member(it, File(dir, "member-$it.db").path, router) }

    init {
        members.forEach { it.open() }
    }

    operator fun get(i: Int): Member = members[i]

    /** Hands every queued packet to every subscribed member (closed ones: their mailbox). */
    suspend fun deliver() {
        while (true) {
            val (topic, payload) = router.next() ?: return
            for (m in members) {
                if (!router.isSubscribed(m.index, topic)) continue
                val client = m.client
                if (client == null) {
                    m.mailbox.add(payload)
                } else {
                    client.receive(listOf(InboundPacket(topic = topic, payload = payload)))
                }
            }
        }
    }

    suspend fun pollAll() {
        for (m in members) m.client?.poll()
    }

    /**
     * Delivers and polls, sleeping [pauseMs] between rounds, until [condition] holds; fails
     * with a summary of every member's conversation after [maxRounds] rounds.
     */
    suspend fun settle(
        what: String,
        maxRounds: Int = 400,
        pauseMs: Long = 20,
        condition: suspend () -> Boolean,
    ) {
        repeat(maxRounds) {
            deliver()
            pollAll()
            deliver()
            if (approveVotes) {
                members.forEach { it.approveOpenVotes() }
                deliver()
            }
            if (condition()) return
            delay(pauseMs)
        }
        fail("$what: not reached after $maxRounds rounds; ${summary()}")
    }

    suspend fun summary(conversationId: String = CONV): String = members.map { m ->
        val info = m.client?.conversation(conversationId)
        if (info == null) {
            "member ${m.index}: ${if (m.client == null) "closed" else "no conversation"}"
        } else {
            "member ${m.index}: ${info.state} epoch ${info.epoch} members ${info.members.size} " +
                "open proposals ${info.openProposals.map { it.kind }}"
        }
    }.joinToString("; ")

    /** True when every listed member is Working in the same epoch with exactly those members. */
    suspend fun agree(indices: List<Int>, conversationId: String = CONV): Boolean {
        val ids = indices.map { members[it].c.memberId() }.toSet()
        val infos = indices.map { members[it].info(conversationId) ?: return false }
        return infos.all {
            it.state == ConversationState.WORKING &&
                it.epoch == infos[0].epoch &&
                it.members.map { m -> m.memberId }.toSet() == ids &&
                it.openProposals.isEmpty()
        }
    }

    /** Member 0 creates the conversation, the others request to join; waits until all agree. */
    suspend fun form(settings: ConversationSettings = fastSettings(), conversationId: String = CONV) {
        members[0].c.createConversation(conversationId, settings)
        for (m in members.drop(1)) m.c.requestToJoin(conversationId)
        val all = members.indices.toList()
        settle("all ${members.size} members in one epoch") { agree(all, conversationId) }
    }

    override fun close() {
        members.forEach { it.close() }
        dir.deleteRecursively()
    }
}
