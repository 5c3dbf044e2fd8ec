package app.outpost.demo.sim

import java.io.File
import java.util.concurrent.TimeUnit

/**
 * A stand-in for the team lead at their desk: not part of the app. The lead's decision is taken
 * on the server, here through its admin CLI
 * (`outpost-server review return <visit> --lead <id> --comment ...`), and reaches the phone by
 * sync like any colleague's change.
 */
class LeadDesk(private val serverCli: File, private val dataDir: File, private val leadId: String) {
    /** Returns [visitId] to its worker with [comment]; fails if the server refuses. */
    fun returnVisit(visitId: String, comment: String): String =
        run("review", "return", visitId, "--lead", leadId, "--comment", comment)

    private fun run(vararg args: String): String {
        val process = ProcessBuilder(serverCli.path, *args)
            .redirectErrorStream(true)
            .apply {
                environment()["OUTPOST_DATA_DIR"] = dataDir.path
                environment()["RUST_LOG"] = "warn"
            }
            .start()
        val output = process.inputStream.bufferedReader().readText().trim()
        check(process.waitFor(60, TimeUnit.SECONDS)) { "outpost-server ${args.joinToString(" ")} did not finish" }
        check(process.exitValue() == 0) { "outpost-server ${args.joinToString(" ")} failed: $output" }
        return output
    }

    companion object {
        /** From `OUTPOST_LEAD_CLI` and `OUTPOST_DATA_DIR`, which scripts/demo.sh sets. */
        fun fromEnvironment(leadId: String): LeadDesk {
            fun env(name: String) = System.getenv(name) ?: error("$name is not set (run the demo with scripts/demo.sh)")
            return LeadDesk(File(env("OUTPOST_LEAD_CLI")), File(env("OUTPOST_DATA_DIR")), leadId)
        }
    }
}
