// swift-tools-version:5.9
// WitanNet — witan with witan-net's transport, for Swift, over the one native library that
// holds both (libwitan_net_ffi). Used here for the Linux host test of the transport.
//
// Targets (Sources/ is filled by crates/witan-net-ffi/test.sh from the generated bindings):
//   WitanFFI, WitanNetFFI   the C side of witan's and witan-net's bindings (system
//                           libraries: header + module map)
//   WitanNet                one Swift module with witan's Swift API (Witan.swift) and
//                           witan-net's (WitanNet.swift): UniFFI's Swift bindings of several
//                           crates share one module. Linked against libwitan_net_ffi only.
//   WitanNetTests           the loopback test
import PackageDescription

let package = Package(
    name: "WitanNet",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "WitanNet", targets: ["WitanNet"]),
    ],
    targets: [
        .systemLibrary(name: "WitanFFI", path: "Sources/WitanFFI"),
        .systemLibrary(name: "WitanNetFFI", path: "Sources/WitanNetFFI"),
        .target(
            name: "WitanNet",
            dependencies: ["WitanFFI", "WitanNetFFI"],
            path: "Sources/WitanNet",
            linkerSettings: [.linkedLibrary("witan_net_ffi")]
        ),
        .testTarget(
            name: "WitanNetTests",
            dependencies: ["WitanNet"],
            path: "Tests/WitanNetTests"
        ),
    ]
)
