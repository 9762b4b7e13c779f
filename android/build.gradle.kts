// witan-android: Android library (AAR) wrapping the witan Rust core.
//
// Kotlin sources: the UniFFI-generated bindings in ../bindings/kotlin (package dev.witan;
// regenerate with bindings/generate.sh). Native code: libwitan.so for arm64-v8a,
// armeabi-v7a, x86 and x86_64, built by build-rust.sh (cargo-ndk, with the NDK pinned below
// and the Rust toolchain pinned in ../rust-toolchain.toml) into build/rustJniLibs before every
// build (skip with -Pwitan.skipRust=true). The bindings load libwitan.so through JNA.
//
// Publishing dev.witan:witan-android:<crate version> (the AAR with a sources jar, a javadoc
// jar and a POM with licences, url, scm and developers):
//   gradle publishToMavenLocal                               ~/.m2, for apps on this machine
//   gradle publishReleasePublicationToLocalRepository        build/repo (a file repository)
//   gradle publishReleasePublicationToRemoteRepository       the repository at WITAN_MAVEN_URL
// Publications are signed when WITAN_SIGNING_KEY (an ASCII-armoured PGP secret key) and
// WITAN_SIGNING_PASSWORD are set in the environment; publishing to the remote repository
// refuses to run unsigned or without the project's url (witan.projectUrl, gradle.properties).
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.21"
    `maven-publish`
    signing
}

// The AAR carries the crate's version (Cargo.toml: `version = "x.y.z"`).
val crateVersion: String = rootDir.resolve("../Cargo.toml").readLines()
    .first { it.trim().startsWith("version") }
    .substringAfter('"').substringBefore('"')

val rustJniLibs = layout.buildDirectory.dir("rustJniLibs")
val cargoProfile = (findProperty("witan.cargoProfile") as String?) ?: "release"
val skipRust = (findProperty("witan.skipRust") as String?)?.toBoolean() ?: false

android {
    namespace = "dev.witan"
    compileSdk = 35
    // NDK r27c: the NDK build-rust.sh links with (ANDROID_NDK_HOME wins if set there).
    ndkVersion = "27.2.12479018"

    defaultConfig {
        // Android 7.0; build-rust.sh builds for the same API level.
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            // The ABIs build-rust.sh builds; JNA's AAR ships its dispatch library for each.
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86", "x86_64")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            java.srcDir("../bindings/kotlin")
            jniLibs.srcDir(rustJniLibs)
        }
    }

    publishing {
        singleVariant("release") {
            withSourcesJar()
            withJavadocJar()
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // JNA with its Android native dispatch libraries; the generated bindings call through it.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    // The generated async functions are `suspend` functions built on kotlinx-coroutines.
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}

val cargoBuild by tasks.registering(Exec::class) {
    description = "Builds libwitan.so for every Android ABI with cargo-ndk (build-rust.sh)."
    group = "build"
    enabled = !skipRust
    workingDir = rootDir
    commandLine(
        "bash", "build-rust.sh", "--profile", cargoProfile, "--out", rustJniLibs.get().asFile.absolutePath,
        "--ndk-version", android.ndkVersion,
    )
    inputs.dir("../src")
    inputs.dir("../crates")
    inputs.files("../Cargo.toml", "../Cargo.lock", "../build.rs", "../rust-toolchain.toml", "build-rust.sh")
    outputs.dir(rustJniLibs)
}

tasks.named("preBuild") {
    dependsOn(cargoBuild)
}

// POM metadata from gradle.properties (witan.*), so the coordinates and the project's home
// are set in one place.
fun prop(name: String): String = (findProperty(name) as String?)?.trim().orEmpty()
val projectUrl = prop("witan.projectUrl")
val signingKey: String? = System.getenv("WITAN_SIGNING_KEY")?.takeIf { it.isNotBlank() }

publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = prop("witan.groupId")
            artifactId = prop("witan.artifactId")
            version = crateVersion
            afterEvaluate {
                from(components["release"])
            }
            pom {
                name.set("witan")
                description.set("Decentralized, end-to-end encrypted group chat (de-MLS) for Android apps")
                if (projectUrl.isNotEmpty()) url.set(projectUrl)
                licenses {
                    license {
                        name.set("MIT")
                        url.set("https://spdx.org/licenses/MIT.html")
                    }
                    license {
                        name.set("Apache-2.0")
                        url.set("https://spdx.org/licenses/Apache-2.0.html")
                    }
                }
                developers {
                    developer {
                        id.set(prop("witan.developerId"))
                        name.set(prop("witan.developerName"))
                        prop("witan.developerEmail").takeIf { it.isNotEmpty() }?.let { email.set(it) }
                    }
                }
                if (projectUrl.isNotEmpty()) {
                    scm {
                        url.set(projectUrl)
                        connection.set("scm:git:$projectUrl.git")
                        developerConnection.set("scm:git:$projectUrl.git")
                    }
                }
            }
        }
    }
    repositories {
        maven {
            name = "local"
            url = uri(layout.buildDirectory.dir("repo"))
        }
        System.getenv("WITAN_MAVEN_URL")?.takeIf { it.isNotBlank() }?.let { remote ->
            maven {
                name = "remote"
                url = uri(remote)
                credentials {
                    username = System.getenv("WITAN_MAVEN_USERNAME")
                    password = System.getenv("WITAN_MAVEN_PASSWORD")
                }
            }
        }
    }
}

signing {
    // In-memory keys from the environment; nothing is signed when no key is given (local use).
    if (signingKey != null) {
        useInMemoryPgpKeys(signingKey, System.getenv("WITAN_SIGNING_PASSWORD").orEmpty())
        sign(publishing.publications["release"])
    }
}

tasks.matching { it.name == "publishReleasePublicationToRemoteRepository" }.configureEach {
    doFirst {
        check(signingKey != null) { "set WITAN_SIGNING_KEY and WITAN_SIGNING_PASSWORD to publish to $name" }
        check(projectUrl.isNotEmpty()) { "set witan.projectUrl in gradle.properties to publish" }
    }
}
