package app.outpost.demo.ui

import uniffi.outpost.InternalException
import uniffi.outpost.OutpostException

/** What a screen tells the worker when a call fails: each error kind the bindings name. */
fun userMessage(error: Throwable): String = when (error) {
    is OutpostException.InvalidInput -> "Check ${error.field}: ${error.reason}"
    is OutpostException.NotFound -> "That record is not on this phone (${error.what})"
    is OutpostException.Network -> "No connection to the server; your work is kept and will sync later"
    is OutpostException.NotAuthorised -> "This phone is not allowed to sync: ${error.reason}"
    is OutpostException.Locked -> "Records are locked until this phone syncs: ${error.reason}"
    is OutpostException.Wiped -> "This phone was taken out of service and its records removed: ${error.reason}"
    is OutpostException.Storage -> "This phone could not save: ${error.reason}"
    is OutpostException.Internal -> "Something went wrong in Outpost: ${error.reason}"
    is InternalException -> "Something went wrong in Outpost: ${error.message}"
    else -> "Unexpected error: $error"
}
