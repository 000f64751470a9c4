// The one dispatch idiom of every kernel family (GEMM, direct, im2col gather, Winograd, FFT, FMA
// peak): a table per instruction set, built on first use by a builder compiled for that set, and
// only after the CPU check allowed it. Nothing compiled for AVX2/AVX-512 runs before then: a builder
// that merely returns function pointers may still hold VEX/EVEX code (SIGILL on an older CPU).
#pragma once

#include <cstdint>

#include "core/cpu.hpp"

namespace fastconv::detail {

// Every per-ISA builder calls note_isa_entry(its set) first; isa_entries counts them, so a test
// run under FASTCONV_MAX_ISA=sse2 fails if code of a higher set was entered (test_isa_dispatch.cpp).
void note_isa_entry(Isa isa);
int64_t isa_entries(Isa isa);

// Error unless this CPU runs `isa` (the cap FASTCONV_MAX_ISA aside: tests reach every set the CPU has).
void require_cpu_runs(Isa isa, const char* family);

// The table of `isa` of one family, built once (thread-safe) by that set's builder.
template <class Table, Table (*BuildSse2)(), Table (*BuildAvx2)(), Table (*BuildAvx512)()>
const Table& isa_table(Isa isa, const char* family) {
  require_cpu_runs(isa, family);
  switch (isa) {
    case Isa::Avx512: {
      static const Table table = BuildAvx512();
      return table;
    }
    case Isa::Avx2: {
      static const Table table = BuildAvx2();
      return table;
    }
    case Isa::Sse2: break;
  }
  static const Table table = BuildSse2();
  return table;
}

// The same for a family whose per-ISA units fill a table in place (void fill_<family>_<isa>(Table&)).
template <class Table, void (*Fill)(Table&)>
Table filled_table() {
  Table t;
  Fill(t);
  return t;
}
template <class Table, void (*FillSse2)(Table&), void (*FillAvx2)(Table&), void (*FillAvx512)(Table&)>
const Table& isa_filled_table(Isa isa, const char* family) {
  return isa_table<Table, filled_table<Table, FillSse2>, filled_table<Table, FillAvx2>, filled_table<Table, FillAvx512>>(
      isa, family);
}

}  // namespace fastconv::detail
