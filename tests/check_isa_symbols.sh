#!/bin/sh
# Per-instruction-set translation units (*__avx2.cpp, *__avx512.cpp, *__sse2.cpp) are compiled with
# their own flags. If one of them emitted an out-of-line copy of an inline function that generic code
# also uses (std::vector's members, a helper from a header), the linker would keep one copy for all:
# possibly the AVX-512 one, which crashes CPUs without AVX-512. Such copies are weak symbols; the only
# weak symbols allowed in these objects are templates over xsimd's architecture types, which generic
# code never names. Usage: check_isa_symbols.sh <directory holding the object files>
set -eu
dir=$1
found=0
bad=0
for obj in $(find "$dir" -name '*__sse2.cpp.o' -o -name '*__avx2.cpp.o' -o -name '*__avx512.cpp.o'); do
  found=$((found + 1))
  # DW.ref.__gxx_personality_v0 points to the exception personality routine: data, not code. So are
  # the "typeinfo (name) for <function type>" objects clang's -fsanitize=function emits (CI's ASan tree).
  leaks=$(nm -C --defined-only "$obj" | awk '$2 ~ /^[WVu]$/' |
          grep -v -e 'xsimd::' -e 'DW.ref.__gxx_personality_v0' -e ' V typeinfo for ' -e ' V typeinfo name for ' || true)
  if [ -n "$leaks" ]; then
    echo "$obj defines shared (weak) symbols compiled with its ISA flags:"
    echo "$leaks" | head -20
    bad=1
  fi
done
if [ "$found" -eq 0 ]; then
  echo "no per-ISA object files under $dir"
  exit 1
fi
echo "checked $found per-ISA object files"
exit $bad
