// Outpost core as an Android library module (`:outpost-core`): liboutpost.so for four ABIs, the
// uniffi-generated Kotlin over it, and OutpostAndroid (the JNI start-up call). The native
// libraries and the Kotlin are build output, not sources: scripts/build-android.sh writes them
// under the Cargo target directory and this module reads them from there. See README.md.

plugins {
    // Versions come from the app's build (its settings or root build file), as for any module.
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

// The Outpost workspace is two directories up (this file is bindings/android/build.gradle.kts).
// Set -Poutpost.targetDir=... if CARGO_TARGET_DIR points elsewhere.
val outpostRoot: File = file("../..")
val outpostTarget: File = providers.gradleProperty("outpost.targetDir")
    .map { file(it) }
    .getOrElse(outpostRoot.resolve("target"))
val outpostJniLibs: File = outpostTarget.resolve("android/jniLibs")
val outpostKotlin: File = outpostTarget.resolve("android/kotlin")

android {
    namespace = "app.outpost.core"
    compileSdk = 35

    defaultConfig {
        // scripts/build-android.sh links for API 24 (OUTPOST_ANDROID_API); keep the two equal.
        minSdk = 24
        // Keep rules for JNA, the native methods and the TLS verifier, applied to every app that
        // shrinks with R8.
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets {
        getByName("main") {
            jniLibs.srcDir(outpostJniLibs)
            // Generated Kotlin (package uniffi.outpost unless bindings/uniffi.toml renames it);
            // the Kotlin plugin compiles .kt files found in java source directories.
            java.srcDir(outpostKotlin)
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

// A clear error instead of "UnsatisfiedLinkError" at run time when the Rust side was not built.
tasks.named("preBuild") {
    val jniLibs = outpostJniLibs
    val kotlinDir = outpostKotlin
    doFirst {
        val missing = listOf("arm64-v8a", "armeabi-v7a", "x86_64", "x86")
            .map { jniLibs.resolve("$it/liboutpost.so") }
            .filterNot { it.isFile } +
            listOf(kotlinDir).filterNot { it.isDirectory }
        if (missing.isNotEmpty()) {
            throw GradleException(
                "Outpost core not built (missing ${missing.joinToString()}); " +
                    "run scripts/build-android.sh in the Outpost workspace first",
            )
        }
    }
}

// rustls-platform-verifier (the core's TLS certificate check) calls a small Kotlin component
// through JNI. Its AAR must be exactly the version Cargo resolved: the version of the
// `rustls-platform-verifier-android` package in Cargo.lock (its README's scheme). The Maven
// repository that serves it is declared in the app's settings.gradle.kts (see README.md).
abstract class RustlsPlatformVerifierVersion :
    ValueSource<String, RustlsPlatformVerifierVersion.Params> {
    interface Params : ValueSourceParameters {
        val lockFile: RegularFileProperty
    }

    override fun obtain(): String {
        val lockFile = parameters.lockFile.get().asFile
        val lines = lockFile.readLines()
        val nameAt = lines.indexOfFirst { it.trim() == "name = \"$CRATE\"" }
        val version = lines.drop(nameAt + 1)
            .takeIf { nameAt >= 0 }
            ?.firstOrNull { it.trimStart().startsWith("version = ") }
            ?.substringAfter('"')
            ?.substringBefore('"')
            ?.takeIf { it.isNotEmpty() }
        return version ?: throw GradleException("$CRATE not found in $lockFile")
    }

    companion object {
        const val CRATE = "rustls-platform-verifier-android"
    }
}

val rustlsPlatformVerifierVersion = providers.of(RustlsPlatformVerifierVersion::class.java) {
    parameters.lockFile.set(layout.projectDirectory.file("../../Cargo.lock"))
}

configurations.configureEach {
    resolutionStrategy.eachDependency {
        if (requested.group == "org.rustls" && requested.name == "rustls-platform-verifier") {
            useVersion(rustlsPlatformVerifierVersion.get())
            because("must match rustls-platform-verifier-android in Outpost's Cargo.lock")
        }
    }
}

dependencies {
    // The generated Kotlin calls liboutpost.so through JNA, and its public API mentions JNA types
    // (so `api`). The @aar carries libjnidispatch.so per ABI; 5.17.0+ has it 16 KB-aligned.
    api("net.java.dev.jna:jna:5.18.1@aar")
    // Version chosen from Cargo.lock above.
    implementation("org.rustls:rustls-platform-verifier")
}
