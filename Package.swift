// swift-tools-version:5.9
// Witan — the Swift package of the witan SDK. It lives at the repository root so that an app
// can add the repository by URL in SwiftPM or Xcode.
//
// Targets:
//   WitanFFI   the C side of the UniFFI bindings, in the first of these forms that applies:
//              1. ios/build/WitanFFI.xcframework, when ios/build-xcframework.sh has made one
//                 in this checkout (development on a Mac);
//              2. the released XCFramework (`releasedXCFramework` below: the zip's URL and
//                 its SwiftPM checksum, written by `ios/build-xcframework.sh --release-url`
//                 and committed with the release tag);
//              3. otherwise, and always on Linux, a system library: the header and module map
//                 in ios/Sources/WitanFFI, linked against libwitan from the linker search path
//                 (the Linux host tests, scripts/test-swift.sh).
//              The XCFramework holds a static library; SQLCipher in it uses CommonCrypto and
//              Security (SecRandomCopyBytes), which a static library cannot bring along, so
//              the Witan target links those frameworks itself.
//   Witan      the generated Swift API (ios/Sources/Witan/Witan.swift, written by
//              bindings/generate.sh; the only copy) and the privacy manifest of the native code
//              (ios/Sources/Witan/PrivacyInfo.xcprivacy).
//   WitanTests XCTest and Swift Testing tests of the bindings (ios/Tests/WitanTests).
import Foundation
import PackageDescription

/// The released XCFramework zip and its `swift package compute-checksum`; nil until the first
/// release. `ios/build-xcframework.sh --release-url URL` rewrites this line.
let releasedXCFramework: (url: String, checksum: String)? = nil

let localXCFramework = "ios/build/WitanFFI.xcframework"
let appleFrameworks: [LinkerSetting] = [.linkedFramework("Security"), .linkedFramework("CoreFoundation")]

#if os(Linux)
let ffiTarget: Target = .systemLibrary(name: "WitanFFI", path: "ios/Sources/WitanFFI")
let witanLinkerSettings: [LinkerSetting] = [.linkedLibrary("witan")]
#else
let ffiTarget: Target
let witanLinkerSettings: [LinkerSetting]
if FileManager.default.fileExists(atPath: Context.packageDirectory + "/" + localXCFramework) {
    ffiTarget = .binaryTarget(name: "WitanFFI", path: localXCFramework)
    witanLinkerSettings = appleFrameworks
} else if let release = releasedXCFramework {
    ffiTarget = .binaryTarget(name: "WitanFFI", url: release.url, checksum: release.checksum)
    witanLinkerSettings = appleFrameworks
} else {
    ffiTarget = .systemLibrary(name: "WitanFFI", path: "ios/Sources/WitanFFI")
    witanLinkerSettings = [.linkedLibrary("witan")]
}
#endif

let package = Package(
    name: "Witan",
    // The XCFramework has iOS slices only (device, and simulator for arm64 and x86_64).
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Witan", targets: ["Witan"]),
    ],
    targets: [
        ffiTarget,
        .target(
            name: "Witan",
            dependencies: ["WitanFFI"],
            path: "ios/Sources/Witan",
            resources: [.copy("PrivacyInfo.xcprivacy")],
            linkerSettings: witanLinkerSettings
        ),
        .testTarget(
            name: "WitanTests",
            dependencies: ["Witan", "WitanFFI"],
            path: "ios/Tests/WitanTests"
        ),
    ]
)
