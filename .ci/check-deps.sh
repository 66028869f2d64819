#!/usr/bin/env bash
# Checks the dependency rule of src/README.md: a file of a folder includes
# headers of its own folder and of the folders below it, never above.
# Prints each violation and fails if there is one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# the folders, lowest first; a folder may include those before it
layers=(aggregates state query fs_catalog engine workers sources api)

rank() {
    local i
    for i in "${!layers[@]}"; do
        [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }
    done
    echo -1
}

violations=0
while IFS= read -r file; do
    rel=${file#src/}
    case "$rel" in
        */*) folder=${rel%%/*} ;;
        *) continue ;;          # init.c, guc.c: the module itself, above all
    esac
    from=$(rank "$folder")
    if [ "$from" -lt 0 ]; then
        echo "$file: folder \"$folder\" is not in the dependency rule" >&2
        violations=$((violations + 1))
        continue
    fi
    while IFS=: read -r line inc; do
        target=${inc%%/*}
        [ -d "src/$target" ] || continue        # a PostgreSQL header
        to=$(rank "$target")
        sub_from=${rel#*/}; sub_from=${sub_from%%/*}
        sub_to=${inc#*/}; sub_to=${sub_to%%/*}
        if [ "$to" -gt "$from" ]; then
            echo "$file:$line: $folder may not include $inc (a folder above it)" >&2
            violations=$((violations + 1))
        elif [ "$folder" = sources ] && [ "$target" = sources ] && [ "$sub_from" != "$sub_to" ]; then
            echo "$file:$line: one source may not include another's $inc" >&2
            violations=$((violations + 1))
        fi
    done < <(grep -no '^#include "[a-z_]*/[a-z_/]*\.h"' "$file" | sed 's/#include "//; s/"$//')
done < <(find src -name '*.c' -o -name '*.h' -o -name '*.cpp' | sort)

if [ "$violations" -gt 0 ]; then
    echo "flowstate: $violations include(s) break the dependency rule of src/README.md" >&2
    exit 1
fi
echo "flowstate: every include follows the dependency rule"
