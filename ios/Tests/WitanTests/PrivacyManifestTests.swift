// The privacy manifest ships as a resource of the Witan target, and it is a well-formed
// property list declaring the required-reason APIs the bundled SQLite calls (App Store review
// reads it from the app's bundles; a malformed one is rejected).
import Foundation
import XCTest
@testable import Witan

final class PrivacyManifestTests: XCTestCase {
    func testThePrivacyManifestShipsWithWitanAndDeclaresSQLitesFileAPIs() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "PrivacyInfo", withExtension: "xcprivacy"))
        let plist = try PropertyListSerialization.propertyList(from: Data(contentsOf: url), format: nil)
        let root = try XCTUnwrap(plist as? [String: Any])
        XCTAssertEqual(root["NSPrivacyTracking"] as? Bool, false)
        XCTAssertEqual((root["NSPrivacyCollectedDataTypes"] as? [Any])?.count, 0)
        let types = try XCTUnwrap(root["NSPrivacyAccessedAPITypes"] as? [[String: Any]])
        var reasons: [String: [String]] = [:]
        for entry in types {
            let category = try XCTUnwrap(entry["NSPrivacyAccessedAPIType"] as? String)
            reasons[category] = entry["NSPrivacyAccessedAPITypeReasons"] as? [String]
        }
        XCTAssertEqual(reasons, [
            "NSPrivacyAccessedAPICategoryFileTimestamp": ["C617.1"],
            "NSPrivacyAccessedAPICategoryDiskSpace": ["E174.1"],
        ])
    }
}
