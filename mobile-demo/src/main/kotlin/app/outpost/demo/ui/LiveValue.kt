package app.outpost.demo.ui

import java.util.concurrent.CopyOnWriteArrayList

/**
 * A value a screen observes, as Android's LiveData or StateFlow: a view model sets it on the main
 * thread and every observer hears each new value. Values are immutable data classes.
 */
class LiveValue<T>(initial: T) {
    @Volatile
    var value: T = initial
        private set

    private val observers = CopyOnWriteArrayList<(T) -> Unit>()

    /** Calls [observer] with the current value now and with each later one, until closed. */
    fun observe(observer: (T) -> Unit): AutoCloseable {
        observers += observer
        observer(value)
        return AutoCloseable { observers -= observer }
    }

    internal fun update(change: (T) -> T) {
        value = change(value)
        observers.forEach { it(value) }
    }
}
