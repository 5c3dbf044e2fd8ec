// The demo's entry point: wires the repository and view models as an Android Application and
// Activity would, plays a day on the phone, and exits non-zero if anything expected did not happen.
package app.outpost.demo

import app.outpost.demo.data.OutpostRepository
import app.outpost.demo.sim.LeadDesk
import app.outpost.demo.ui.AssessmentViewModel
import app.outpost.demo.ui.CaseloadViewModel
import app.outpost.demo.ui.SyncViewModel
import app.outpost.demo.ui.VisitEditorViewModel
import java.io.FileDescriptor
import java.io.FileOutputStream
import java.io.PrintStream
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

/** The team lead scripts/demo.sh creates. */
private const val LEAD_ID = "lead1"

fun main() {
    // The screens draw boxes and names such as "Martín" whatever the terminal's locale says.
    System.setOut(PrintStream(FileOutputStream(FileDescriptor.out), true, Charsets.UTF_8))

    val config = DemoConfig.fromEnvironment()
    // Android gives the main thread; a real app's io executor would be a small pool or Dispatchers.IO.
    val ui = singleThread("ui")
    val io = singleThread("outpost-io")
    val repository = OutpostRepository(config.storePath, io, ui)
    val screens = ViewModels(
        sync = SyncViewModel(repository),
        caseload = CaseloadViewModel(repository),
        visit = VisitEditorViewModel(repository),
        assessment = AssessmentViewModel(repository),
    )

    val status = try {
        Day(config, screens, ui, LeadDesk.fromEnvironment(LEAD_ID)).play()
        println("\ndemo finished: the day's work is on the server and nothing is waiting to be sent")
        0
    } catch (failure: DemoFailure) {
        println("\nDEMO FAILED: ${failure.message}")
        1
    } catch (error: Throwable) {
        println("\nDEMO FAILED with an unexpected error:")
        error.printStackTrace(System.out)
        1
    }

    screens.sync.close()
    screens.caseload.close()
    screens.visit.close()
    repository.close()
    for (executor in listOf(io, ui)) {
        executor.shutdown()
        executor.awaitTermination(30, TimeUnit.SECONDS)
    }
    exitProcess(status)
}

private fun singleThread(name: String): ExecutorService =
    Executors.newSingleThreadExecutor { task -> Thread(task, name).apply { isDaemon = true } }
