// witan-android: Android library (AAR) wrapping the witan Rust core.
//
// Kotlin sources: the UniFFI-generated bindings in ../bindings/kotlin (package dev.witan;
// regenerate with bindings/generate.sh). Native code: libwitan.so for arm64-v8a,
// armeabi-v7a and x86_64, built by build-rust.sh (cargo-ndk) into build/rustJniLibs before
// every build (skip with -Pwitan.skipRust=true). The bindings load libwitan.so through JNA.
// Publishing: `./gradlew publishReleasePublicationToLocalRepository` writes
// dev.witan:witan-android:<crate version> to build/repo; `publishToMavenLocal` also works.
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.21"
    `maven-publish`
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

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
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
    commandLine("bash", "build-rust.sh", "--profile", cargoProfile, "--out", rustJniLibs.get().asFile.absolutePath)
    inputs.dir("../src")
    inputs.files("../Cargo.toml", "../Cargo.lock", "build-rust.sh")
    outputs.dir(rustJniLibs)
}

tasks.named("preBuild") {
    dependsOn(cargoBuild)
}

publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = "dev.witan"
            artifactId = "witan-android"
            version = crateVersion
            afterEvaluate {
                from(components["release"])
            }
            pom {
                name.set("witan")
                description.set("Decentralized, end-to-end encrypted group chat (de-MLS) for Android apps")
                licenses {
                    license { name.set("MIT") }
                    license { name.set("Apache-2.0") }
                }
            }
        }
    }
    repositories {
        maven {
            name = "local"
            url = uri(layout.buildDirectory.dir("repo"))
        }
    }
}
