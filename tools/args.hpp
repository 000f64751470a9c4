// A small strict command-line parser: --name value, --name=value, flags, positionals; an unknown
// option is an error.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastconv::tools {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // `valued`: options that take a value; `flags`: options that do not.
  Args(const std::vector<std::string>& argv, std::set<std::string> valued, std::set<std::string> flags) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
        std::string name = a.substr(2), value;
        const auto eq = name.find('=');
        bool has_value = eq != std::string::npos;
        if (has_value) value = name.substr(eq + 1), name = name.substr(0, eq);
        if (flags.count(name)) {
          if (has_value) throw UsageError("--" + name + " takes no value");
          flags_.insert(name);
        } else if (valued.count(name)) {
          if (!has_value) {
            if (i + 1 >= argv.size()) throw UsageError("--" + name + " needs a value");
            value = argv[++i];
          }
          if (values_.count(name)) throw UsageError("--" + name + " given twice");
          values_[name] = value;
        } else {
          throw UsageError("unknown option --" + name);
        }
      } else {
        positional_.push_back(a);
      }
    }
  }
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  std::string required(const std::string& name) const {
    auto v = value(name);
    if (!v) throw UsageError("--" + name + " is required");
    return *v;
  }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

// The whole text as a decimal integer, or nothing (empty, junk after the number, out of range).
inline std::optional<int64_t> to_int64(const std::string& text) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (text.empty() || used != text.size()) return std::nullopt;
  return v;
}

// "12" -> 12; anything else (sign, junk, overflow past max) is a UsageError naming the option.
inline int64_t parse_count(const std::string& text, const std::string& option, int64_t min, int64_t max) {
  const std::optional<int64_t> v = to_int64(text);
  if (!v || *v < min || *v > max)
    throw UsageError("--" + option + " " + text + ": expected an integer from " + std::to_string(min) + " to " +
                     std::to_string(max));
  return *v;
}

inline std::vector<int64_t> parse_list(const std::string& text, const std::string& option, int64_t min) {
  std::vector<int64_t> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    out.push_back(parse_count(text.substr(start, comma - start), option, min, int64_t(1) << 40));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace fastconv::tools
