package app.outpost.demo

import java.io.File
import uniffi.outpost.ServerConfig

/**
 * What a phone is given when it is set up: the server, the CA its certificate chains to, and a
 * one-time enrolment code (on Android, typed in or read from a QR code), plus where the store
 * lives (the app's files dir). scripts/demo.sh passes them as environment variables.
 */
data class DemoConfig(val server: ServerConfig, val enrolmentCode: String, val storePath: String) {
    companion object {
        fun fromEnvironment(): DemoConfig {
            fun env(name: String) = System.getenv(name) ?: error("$name is not set (run the demo with scripts/demo.sh)")
            return DemoConfig(
                server = ServerConfig(
                    host = env("OUTPOST_HOST"),
                    port = env("OUTPOST_PORT").toInt(),
                    caPem = File(env("OUTPOST_CA")).readText(),
                    pins = emptyList(),
                ),
                enrolmentCode = env("OUTPOST_CODE"),
                storePath = env("OUTPOST_STORE"),
            )
        }
    }
}
