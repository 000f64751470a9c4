// Hostile files and sizes: a FIFO, a directory, /dev/zero or a 10 GB sparse file is refused at once
// with a clear Error; sizes that overflow and allocations that fail become Errors naming the size.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/file_read.hpp"
#include "fastconv/fastconv.hpp"
#include "npy.hpp"
#include "suite.hpp"

using namespace fastconv;

namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/fastconv_hostile_" + std::to_string(::getpid()) + "_" + name;
}

// The hostile paths, made once: a FIFO nobody writes, a directory, /dev/zero, a 10 GB sparse file.
struct Hostile {
  std::string fifo = temp_path("fifo"), dir = temp_path("dir"), sparse = temp_path("sparse");
  Hostile() {
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    const int fd = ::open(sparse.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, off_t(10) << 30) == 0);
    ::close(fd);
  }
  ~Hostile() {
    std::remove(fifo.c_str());
    ::rmdir(dir.c_str());
    std::remove(sparse.c_str());
  }
  std::vector<std::pair<std::string, std::string>> paths() const {
    return {{fifo, "not a regular file"}, {dir, "directory"}, {"/dev/zero", "not a regular file"}, {sparse, ""}};
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("hostile files: wisdom, .npy and suite readers refuse them at once", "[hostile]") {
  const Hostile h;
  for (const auto& [path, why] : h.paths()) {
    INFO(path);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(load_wisdom(path), Catch::Contains("wisdom file '" + path + "'") && Catch::Contains(why));
    CHECK_THROWS_AS(tools::read_npy(path), tools::NpyError);
    CHECK_THROWS_WITH(tools::read_npy(path), Catch::Contains(path) && Catch::Contains(why));
    CHECK_THROWS_AS(tools::load_suite(path), Error);
    CHECK(seconds_since(t0) < 2.0);  // refused unread, not after reading 10 GB
  }
  // The sparse file: the wisdom loader names its size; the .npy reader finds no magic in its start.
  CHECK_THROWS_WITH(load_wisdom(h.sparse), Catch::Contains("10737418240 bytes") && Catch::Contains("refused unread"));
  CHECK_THROWS_WITH(tools::read_npy(h.sparse), Catch::Contains("bad magic"));
}

TEST_CASE("hostile files: a .npy header claiming more data than the file holds is refused before reading", "[hostile]") {
  const std::string path = temp_path("claims.npy");
  std::vector<float> small(6, 1.0f);
  tools::write_npy(path, {2, 3}, small.data());
  // Grow the file sparsely past its data: 'bytes after the data', found from the size alone.
  REQUIRE(::truncate(path.c_str(), off_t(4) << 30) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(tools::read_npy(path), Catch::Contains("bytes after the data"));
  CHECK(seconds_since(t0) < 2.0);
  std::remove(path.c_str());
}

TEST_CASE("hostile files: FASTCONV_WISDOM=/dev/zero or a FIFO is ignored at once with a message", "[hostile]") {
  const Hostile h;
  for (const std::string& path : {std::string("/dev/zero"), h.fifo, h.sparse}) {
    INFO(path);
    const std::string err = temp_path("wisdom_env.err");
    const std::string cmd = "FASTCONV_WISDOM=" + path + " timeout 60 " + std::string(FASTCONV_CLI) +
                            " plan n1c3h9w9k4r3s3 --mode measure --threads 1 >/dev/null 2>" + err;
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = std::system(cmd.c_str());
    CHECK(WEXITSTATUS(rc) == 0);
    CHECK(seconds_since(t0) < 30.0);
    FILE* f = std::fopen(err.c_str(), "r");
    REQUIRE(f);
    char buf[4096] = {};
    (void)std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    CHECK_THAT(std::string(buf), Catch::Contains("FASTCONV_WISDOM ignored") && Catch::Contains(path));
    std::remove(err.c_str());
  }
}

TEST_CASE("hostile sizes: buffer and workspace sizes that overflow are Errors", "[hostile]") {
  using detail::AlignedBuffer;
  CHECK_THROWS_WITH(AlignedBuffer<float>(SIZE_MAX / 2), Catch::Contains("overflows size_t"));
  CHECK_THROWS_WITH(AlignedBuffer<double>(SIZE_MAX / 8 + 1), Catch::Contains("overflows size_t"));
  CHECK_THROWS_AS(AlignedBuffer<char>(SIZE_MAX - 10), Error);  // rounding up to 64 overflows
  detail::WorkspaceLayout layout;
  layout.add<float>(SIZE_MAX / 8);
  CHECK_THROWS_WITH(layout.add<float>(SIZE_MAX / 8), Catch::Contains("overflows size_t"));
  detail::WorkspaceLayout one;
  CHECK_THROWS_AS(one.add<float>(SIZE_MAX / 3), Error);
}

TEST_CASE("hostile sizes: an allocation that fails is an Error naming the bytes", "[hostile]") {
  // 2^50 bytes: more than any machine here holds, within size_t.
  CHECK_THROWS_WITH(detail::AlignedBuffer<char>(std::size_t(1) << 50),
                    Catch::Contains("out of memory: needs 1125899906842624 bytes"));
}

TEST_CASE("hostile sizes: packed weights whose size overflows are declined, their bytes never allocated", "[hostile]") {
  // K = 1 rounded up to the GEMM tile (MR) or the direct channel block multiplies C*R*S = 2^61: the
  // weights themselves fit (2^63 bytes), the packed copy does not.
  ConvProblem p;
  p.in_channels = int64_t(1) << 61, p.in_height = p.in_width = 1;
  p.out_channels = 1, p.kernel_height = p.kernel_width = 1;
  for (Algorithm a : {Algorithm::Auto, Algorithm::Direct, Algorithm::Im2col}) {
    PlanOptions o;
    o.algorithm = a;
    INFO(to_string(a));
    CHECK_THROWS_AS(Plan::create(p, o), Error);
  }
  PlanOptions o;
  o.algorithm = Algorithm::Im2col;
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("packed weights") && Catch::Contains("overflow"));
}

TEST_CASE("hostile sizes: packing weights too large for memory is an Error, the output untouched", "[hostile]") {
  // 2^44 input channels: the packed weights need 2^46+ bytes (64 TiB) and cannot be allocated.
  ConvProblem p;
  p.in_channels = int64_t(1) << 44, p.in_height = p.in_width = 1;
  p.out_channels = 1, p.kernel_height = p.kernel_width = 1;
  PlanOptions o;
  o.algorithm = Algorithm::Im2col;
  o.workspace_limit = SIZE_MAX;
  const Plan plan = Plan::create(p, o);
  const float w = 1.0f;
  CHECK_THROWS_WITH(plan.pack_weights(&w, nullptr), Catch::Contains("out of memory: needs") && Catch::Contains("bytes"));
}
