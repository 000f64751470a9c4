// Wisdom: the implementation Measure mode chose, per problem and context, kept across runs.
#pragma once

#include <optional>
#include <string>

#include "core/algorithm.hpp"

namespace fastconv::detail {

// Key: problem, threads, instruction set, workspace limit, requested algorithm and implementation
// prefix. (The library version and the CPU are checked once per file.)
std::string wisdom_key(const Geometry&, const PlanContext&, const PlanOptions&);
std::optional<std::string> wisdom_lookup(const std::string& key);
void wisdom_remember(const std::string& key, const std::string& implementation);
// Loads FASTCONV_WISDOM once, on the first plan; a bad file is reported on stderr and ignored.
void wisdom_load_from_environment();
// load_wisdom's parser, on text already read (`path` names it in errors): the fuzz target's entry.
void load_wisdom_text(const std::string& text, const std::string& path);
// The three header lines a wisdom file of this library on this CPU starts with, and the checksum
// line that seals `body` (for tests and the fuzz target).
std::string wisdom_header();
std::string wisdom_checksum_line(const std::string& body);

}  // namespace fastconv::detail
