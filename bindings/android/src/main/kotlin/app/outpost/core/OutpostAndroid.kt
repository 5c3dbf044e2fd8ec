package app.outpost.core

import android.content.Context

/**
 * Android start-up for the Outpost core. Call [init] once, in `Application.onCreate`, before any
 * sync: the core checks the server's TLS certificate with Android's own verifier
 * (rustls-platform-verifier), which needs the application context to reach it.
 */
object OutpostAndroid {
    init {
        // The same library the generated uniffi bindings load through JNA.
        System.loadLibrary("outpost")
    }

    /** Hands [context] to the native core; later calls are ignored. Throws if the core cannot use it. */
    @JvmStatic
    external fun init(context: Context)
}
