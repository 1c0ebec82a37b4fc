#!/usr/bin/env bash
# The wide Q8_0 tile in assembly, timed over roberta-base's product shapes on one core (needs
# gcc and a CPU with AVX-512 VNNI). docs/benchmarks.md, "Tile-major activations", says what it
# showed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for shape in "768 3072 2048" "768 3072 36" "3072 768 2048"; do
  set -- $shape
  (cd "$out" && python3 "$here/gen_tile.py" "$1" "$2" inter)
  gcc -O2 -Wa,--noexecstack "$here/driver.c" "$out/tile.s" -o "$out/tile"
  echo "$3 x $1 -> $2: $("$out/tile" "$1" "$2" "$3" 8)"
done
