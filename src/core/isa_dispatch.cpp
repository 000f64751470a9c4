#include "core/isa_dispatch.hpp"

#include <atomic>
#include <string>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {
namespace {
std::atomic<int64_t> g_entries[3];
}

void note_isa_entry(Isa isa) { g_entries[static_cast<int>(isa)].fetch_add(1, std::memory_order_relaxed); }
int64_t isa_entries(Isa isa) { return g_entries[static_cast<int>(isa)].load(std::memory_order_relaxed); }

void require_cpu_runs(Isa isa, const char* family) {
  if (!isa_supported_by_cpu(isa))
    throw Error(std::string(family) + " kernels for " + isa_name(isa) + " requested, but this CPU does not run " +
                isa_name(isa));
}

}  // namespace fastconv::detail
