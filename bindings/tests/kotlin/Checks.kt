package outpost.test

/** A check that did not hold; `main` reports it and exits non-zero. */
class CheckFailed(message: String) : AssertionError(message)

/** Shadows Kotlin's own `check` so a failure names itself as a check, not a program fault. */
fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw CheckFailed(message())
}

fun <T> checkEquals(expected: T, actual: T, what: String) {
    check(expected == actual) { "$what: expected <$expected>, got <$actual>" }
}

/** Runs [block], which must throw an [E]; returns it for further checks. */
inline fun <reified E : Throwable> expectThrows(what: String, block: () -> Unit): E {
    val thrown = try {
        block()
        null
    } catch (e: Throwable) {
        e
    }
    check(thrown is E) {
        "$what: expected ${E::class.qualifiedName}, got " +
            (thrown?.let { "${it::class.qualifiedName}: ${it.message}" } ?: "no exception")
    }
    println("    $what -> ${thrown!!::class.simpleName}: ${thrown.message}")
    return thrown as E
}

private var stepNumber = 0

/** Prints a numbered step heading, so a failure's output shows how far the run got. */
fun step(title: String) {
    stepNumber += 1
    println("\n== step $stepNumber: $title")
}

fun note(text: String) = println("    $text")
