#include "core/file_read.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

RegularFile::RegularFile(const std::string& path, const std::string& what) : prefix_(what + " '" + path + "': ") {
  // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd_, &st) != 0) fail(std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("is a directory: not a regular file");
  if (!S_ISREG(st.st_mode)) fail("not a regular file (a FIFO, socket or device is refused)");
  size_ = uint64_t(st.st_size);
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RegularFile::fail(const std::string& why) const { throw Error(prefix_ + why); }

void RegularFile::read_at(uint64_t offset, void* dst, std::size_t n) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(fd_, p, n, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(std::string("read error: ") + std::strerror(errno));
    if (got == 0) fail("read error: the file is shorter than its size said (changed while read)");
    p += got, n -= std::size_t(got), offset += uint64_t(got);
  }
}

std::string read_regular_file(const std::string& path, std::size_t max_bytes, const std::string& what) {
  RegularFile f(path, what);
  if (f.size() > max_bytes)
    f.fail(std::to_string(f.size()) + " bytes, larger than " + std::to_string(max_bytes) + ": refused unread");
  std::string bytes(std::size_t(f.size()), '\0');
  if (!bytes.empty()) f.read_at(0, &bytes[0], bytes.size());
  return bytes;
}

}  // namespace fastconv::detail
