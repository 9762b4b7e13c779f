// Placeholder JVM host test: proves that the generated bindings, JNA, kotlinx-coroutines and
// the native library fit together. The real binding tests (a three-member conversation
// through an in-language transport) replace or join it once the API exists.
package dev.witan.hosttests

import com.sun.jna.NativeLibrary
import dev.witan.uniffiEnsureInitialized
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

class LibraryLoadsTest {
    @Test
    fun bindingsMatchTheLibrary() {
        // Loads libwitan through JNA and checks the contract version and API checksums;
        // throws if the bindings and the library were built from different sources.
        uniffiEnsureInitialized()
    }

    @Test
    fun libraryExportsTheUniffiContract() {
        val version = NativeLibrary.getInstance("witan")
            .getFunction("ffi_witan_uniffi_contract_version")
            .invokeInt(arrayOf())
        assertTrue(version > 0, "contract version $version")
    }

    @Test
    fun coroutinesRuntimeIsAvailable() = runBlocking {
        assertEquals(42, withContext(Dispatchers.Default) { 42 })
    }
}
