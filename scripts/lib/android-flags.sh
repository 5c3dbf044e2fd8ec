# shellcheck shell=bash
# Linker flags for every Android library Outpost ships, in one place: scripts/build-android.sh
# links the four ABIs with them, and scripts/check-page-alignment.sh links the host library with
# exactly the same flags to prove they give 16 KB-aligned LOAD segments. Source this file.
#
# Android 15+ devices may use 16 KB pages, and Google Play requires 16 KB-aligned native
# libraries. Android's guide (developer.android.com/guide/practices/page-sizes) asks for
# max-page-size=16384 with NDK r27 and older; r28+ does it by default, so with the r27+ this
# project requires the flag is at worst redundant. The guide adds common-page-size=16384 only for
# NDK r22 and older (not supported here), so it is deliberately left out.

# The commas belong to the one linker argument (SC2054); the scripts that source this use it (SC2034).
# shellcheck disable=SC2034,SC2054
OUTPOST_ANDROID_LINK_ARGS=(-C link-arg=-Wl,-z,max-page-size=16384)

# The alignment those flags must produce on every LOAD segment.
# shellcheck disable=SC2034
OUTPOST_PAGE_ALIGN=16384

# outpost_load_segments READELF LIB
# One line per LOAD program header of LIB: "<n> <offset> <vaddr> <flags> <align>", align in
# decimal, flags with spaces removed ("R E" -> "RE"). Fails if readelf fails or finds none.
outpost_load_segments() {
    local readelf=$1 lib=$2 headers line n=0
    headers=$("$readelf" -lW "$lib") || return 1
    while read -r line; do
        [[ "$line" == LOAD\ * ]] || continue
        n=$((n + 1))
        # LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg... Align: Flg may hold spaces ("R E"),
        # so take the fields by position from both ends.
        local -a f
        read -r -a f <<<"$line"
        local flags="${f[*]:6:${#f[@]}-7}"
        echo "$n ${f[1]} ${f[2]} ${flags// /} $((f[${#f[@]} - 1]))"
    done <<<"$headers"
    ((n > 0)) || { echo "no LOAD segments in $lib" >&2; return 1; }
}

# outpost_check_load_align READELF LIB MIN
# Succeeds when every LOAD segment of LIB is aligned to at least MIN bytes; otherwise names each
# segment that is not, on stderr.
outpost_check_load_align() {
    local readelf=$1 lib=$2 min=$3 segments n offset vaddr flags align bad=0
    segments=$(outpost_load_segments "$readelf" "$lib") || return 1
    while read -r n offset vaddr flags align; do
        if ((align < min)); then
            printf '%s: LOAD segment %d (offset %s, vaddr %s, flags %s) has Align 0x%x, below 0x%x\n' \
                "$lib" "$n" "$offset" "$vaddr" "$flags" "$align" "$min" >&2
            bad=1
        fi
    done <<<"$segments"
    return "$bad"
}

# outpost_min_load_align READELF LIB: the smallest LOAD alignment in LIB, in decimal.
outpost_min_load_align() {
    outpost_load_segments "$1" "$2" | awk 'NR == 1 || $5 < min { min = $5 } END { print min }'
}
