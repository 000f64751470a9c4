// Reading files that may be hostile (a FIFO, a directory, /dev/zero, a huge sparse file): refused at
// once by what fstat says, before a byte is read; never blocks, never reads more than it was told.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fastconv::detail {

// A regular file opened for reading, its size known before anything is read. Errors (Error) start
// with "<what> '<path>': ".
class RegularFile {
 public:
  RegularFile(const std::string& path, const std::string& what);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  uint64_t size() const { return size_; }
  // Reads exactly n bytes at `offset` (Error on a short read: the file shrank).
  void read_at(uint64_t offset, void* dst, std::size_t n);
  [[noreturn]] void fail(const std::string& why) const;

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string prefix_;
};

// The whole file if it is a regular file of at most max_bytes; else Error at once.
std::string read_regular_file(const std::string& path, std::size_t max_bytes, const std::string& what);

}  // namespace fastconv::detail
