// swift-tools-version:5.9
// The Outpost core as a Swift package: the Rust static library (an xcframework for devices and
// the simulator) and the Swift uniffi generates over it. scripts/build-ios.sh puts both in place:
// OutpostCore.xcframework next to this file and Sources/Outpost/outpost.swift. See README.md.
import PackageDescription

let package = Package(
    name: "Outpost",
    // The same floor as IPHONEOS_DEPLOYMENT_TARGET in scripts/build-ios.sh.
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Outpost", targets: ["Outpost"]),
    ],
    targets: [
        // liboutpost.a with the C header and module map (module `outpostFFI`) the Swift imports.
        .binaryTarget(name: "OutpostCore", path: "OutpostCore.xcframework"),
        .target(
            name: "Outpost",
            dependencies: ["OutpostCore"],
            path: "Sources/Outpost",
            linkerSettings: [
                // A Rust static library does not bring its system dependencies with it: the TLS
                // verifier (rustls-platform-verifier) uses the Security framework, over
                // CoreFoundation. `cargo rustc ... --print native-static-libs` lists them.
                .linkedFramework("Security"),
                .linkedFramework("CoreFoundation"),
            ]
        ),
    ]
)
