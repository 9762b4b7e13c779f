// swift-tools-version:5.9
// Witan — the Swift package of the witan SDK.
//
// Targets:
//   WitanFFI   the C side of the UniFFI bindings (header + module map). On Apple platforms
//              it is the XCFramework made by ios/build-xcframework.sh when
//              build/WitanFFI.xcframework exists; otherwise a system library whose
//              Sources/WitanFFI holds WitanFFI.h and module.modulemap copied from
//              bindings/swift by ios/sync-bindings.sh, linked against libwitan from the
//              linker search path (Linux host tests: scripts/test-swift.sh).
//   Witan      the generated Swift API (Sources/Witan/Witan.swift, copied the same way).
//   WitanTests XCTest tests of the bindings.
import Foundation
import PackageDescription

let xcframeworkPath = "build/WitanFFI.xcframework"
let useXCFramework = FileManager.default.fileExists(
    atPath: Context.packageDirectory + "/" + xcframeworkPath)

let ffiTarget: Target = useXCFramework
    ? .binaryTarget(name: "WitanFFI", path: xcframeworkPath)
    : .systemLibrary(name: "WitanFFI", path: "Sources/WitanFFI")

let package = Package(
    name: "Witan",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Witan", targets: ["Witan"]),
    ],
    targets: [
        ffiTarget,
        .target(
            name: "Witan",
            dependencies: ["WitanFFI"],
            path: "Sources/Witan",
            linkerSettings: useXCFramework ? [] : [.linkedLibrary("witan")]
        ),
        .testTarget(
            name: "WitanTests",
            dependencies: ["Witan", "WitanFFI"],
            path: "Tests/WitanTests"
        ),
    ]
)
