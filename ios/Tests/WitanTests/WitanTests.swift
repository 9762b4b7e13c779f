// Placeholder Swift tests: prove that the generated Swift bindings, the WitanFFI module and
// libwitan fit together. The real binding tests (a three-member conversation through an
// in-language transport) replace or join them once the API exists.
import XCTest
import WitanFFI
@testable import Witan

final class LibraryLoadsTests: XCTestCase {
    func testBindingsMatchTheLibrary() {
        // Checks the contract version and the API checksums; traps on a mismatch.
        uniffiEnsureWitanInitialized()
    }

    func testLibraryExportsTheUniffiContract() {
        XCTAssertGreaterThan(ffi_witan_uniffi_contract_version(), 0)
    }
}
