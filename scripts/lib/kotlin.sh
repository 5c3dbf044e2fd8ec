# shellcheck shell=bash
# Kotlin on the JVM for the demo and the FFI bench: the compiler from npm's kotlin-compiler
# (scripts/tools), JNA from Debian's libjna-java, and a cache of compiled jars.
# Source it after setting target_dir; it defines kotlin_home, jna, kotlin_version, seconds,
# took and cached_jar.

: "${target_dir:?set target_dir before sourcing scripts/lib/kotlin.sh}"
kotlin_home=scripts/tools/node_modules/kotlin-compiler
jna=/usr/share/java/jna.jar
seconds() { date +%s.%N; }
took() { awk -v from="$1" -v to="$(seconds)" 'BEGIN { printf "%.1f s", to - from }'; }

if [[ ! -x $kotlin_home/bin/kotlinc ]]; then
    echo "== installing the Kotlin compiler (npm ci --prefix scripts/tools)" >&2
    npm ci --prefix scripts/tools --no-audit --no-fund --loglevel=error >&2
fi
[[ -f $jna ]] || { echo "JNA is missing at $jna: install Debian's libjna-java" >&2; exit 1; }
kotlin_version=$(cat "$kotlin_home/build.txt")

# Compiles sources into a jar under $target_dir/kotlin named by a hash of the sources and the
# classpath's file names, unless that jar exists: the same key as
# bindings/tests/support/kotlin.rs, so the bindings jar is shared with the Kotlin test.
# Usage: cached_jar NAME CLASSPATH SOURCE...   (prints the jar's path)
cached_jar() {
    local name=$1 classpath=$2
    shift 2
    local key jar entry
    key=$({
        cat "$@"
        IFS=: read -ra entries <<<"$classpath"
        for entry in "${entries[@]}"; do printf '%s\n' "$(basename "$entry")"; done
    } | sha256sum | cut -c1-16)
    jar=$target_dir/kotlin/$name-$kotlin_version-$key.jar
    if [[ -f $jar ]]; then
        echo "   reusing $jar" >&2
    else
        mkdir -p "$target_dir/kotlin"
        local begun partial=$target_dir/kotlin/$name.$$.partial.jar
        begun=$(seconds)
        "$kotlin_home/bin/kotlinc" -nowarn -d "$partial" -cp "$classpath" "$@" >&2
        mv "$partial" "$jar"
        echo "   compiled $jar in $(took "$begun")" >&2
    fi
    echo "$jar"
}
