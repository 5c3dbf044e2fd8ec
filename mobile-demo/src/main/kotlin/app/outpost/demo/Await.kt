package app.outpost.demo

import app.outpost.demo.ui.LiveValue
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException

/** Something the day expected did not happen; the demo exits non-zero. */
class DemoFailure(message: String) : Exception(message)

fun expect(condition: Boolean, message: () -> String) {
    if (!condition) throw DemoFailure(message())
}

private val PATIENCE: Duration = Duration.ofSeconds(30)

/**
 * Waits until the screen's state satisfies [until], as a person watches a screen. Fails at once
 * if [error] finds an error shown, and after [PATIENCE] if the state never arrives.
 */
fun <S> LiveValue<S>.await(what: String, error: (S) -> String? = { null }, until: (S) -> Boolean): S =
    awaitFuture(what) { future ->
        observe { state ->
            error(state)?.let { future.completeExceptionally(DemoFailure("$what: the screen shows \"$it\"")) }
            if (until(state)) future.complete(state)
        }
    }

/** Starts something that answers through a callback (say, with a new record's id) and waits. */
fun <T, S> LiveValue<S>.awaitCallback(what: String, error: (S) -> String?, start: ((T) -> Unit) -> Unit): T =
    awaitFuture(what) { future ->
        val watching = observe { state ->
            error(state)?.let { future.completeExceptionally(DemoFailure("$what: the screen shows \"$it\"")) }
        }
        start { future.complete(it) }
        watching
    }

private fun <T> LiveValue<*>.awaitFuture(what: String, watch: (CompletableFuture<T>) -> AutoCloseable): T {
    val future = CompletableFuture<T>()
    watch(future).use {
        try {
            return future.get(PATIENCE.toMillis(), TimeUnit.MILLISECONDS)
        } catch (e: TimeoutException) {
            throw DemoFailure("$what did not happen within ${PATIENCE.seconds} s; the screen shows $value")
        } catch (e: ExecutionException) {
            throw e.cause ?: e
        }
    }
}
