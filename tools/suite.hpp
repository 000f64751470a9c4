// Suites of layer shapes: the CSV format of shapes/suite.csv and the built-in copy of it.
// Columns: name,N,C,H,W,K,R,S,stride_h,stride_w,pad_h,pad_w,dil_h,dil_w,groups ('#' comments).
#pragma once

#include <string>
#include <vector>

#include "fastconv/fastconv.hpp"

namespace fastconv::tools {

struct SuiteShape {
  std::string name;
  ConvProblem problem;
};

// Throws fastconv::Error naming the source, the line and the field.
std::vector<SuiteShape> parse_suite(const std::string& csv, const std::string& source);
std::vector<SuiteShape> load_suite(const std::string& path);
std::vector<SuiteShape> builtin_suite();
const char* builtin_suite_csv();  // generated from shapes/suite.csv at build time

// A layer named on the command line: a canonical name (n1c64h56w56k64r3s3_p1), the name of a shape
// of the built-in suite, or the 14 numbers of a suite row (N,C,H,W,K,R,S,sh,sw,ph,pw,dh,dw,g).
SuiteShape parse_shape_argument(const std::string& arg);

}  // namespace fastconv::tools
