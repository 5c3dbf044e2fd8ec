package outpost.test

import java.io.File
import uniffi.outpost.Outpost
import uniffi.outpost.ServerConfig

/** What the Rust test tells this program: the server, its CA, two enrolment codes, a work dir. */
data class TestEnv(
    val server: ServerConfig,
    val codeForW1: String,
    val codeForW2: String,
    val workDir: File,
) {
    /** Opens a fresh store named [name] in the work dir (no key: the store is not encrypted). */
    fun openStore(name: String): Outpost = Outpost.open(File(workDir, "$name.sqlite3").path, null)

    companion object {
        fun fromEnvironment(): TestEnv {
            fun env(name: String) = System.getenv(name) ?: throw CheckFailed("$name is not set")
            return TestEnv(
                server = ServerConfig(
                    host = env("OUTPOST_HOST"),
                    port = env("OUTPOST_PORT").toInt(),
                    caPem = File(env("OUTPOST_CA")).readText(),
                    pins = emptyList(),
                ),
                codeForW1 = env("OUTPOST_CODE_1"),
                codeForW2 = env("OUTPOST_CODE_2"),
                workDir = File(env("OUTPOST_WORK")).also { it.mkdirs() },
            )
        }
    }
}
