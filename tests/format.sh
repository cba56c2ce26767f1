#!/usr/bin/env bash
# format.sh SRC: every C source of the project is clang-formatted with the
# committed .clang-format (generated protobuf code lives in the build tree).
cd "${1:?source dir}" || exit 1
bad=$(find proto leaf shard root topology tools tests -name '*.[ch]' 2>/dev/null |
      while read -r f; do clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
[ -z "$bad" ] || { echo "not clang-formatted:"; echo "$bad"; exit 1; }
echo "all sources formatted"
