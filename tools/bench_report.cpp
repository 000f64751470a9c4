#include "bench_report.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "fastconv/fastconv.hpp"
#include "format.hpp"

namespace fastconv::tools {
namespace {

const char* const kAlgorithms[] = {"direct", "im2col", "winograd", "fft"};

bool is_fastconv_impl(const BenchEntry& e) { return e.algorithm != "auto" && e.algorithm != "onednn"; }

double gflops(const BenchShape& s, const BenchEntry& e) { return s.gflop / (e.median_ms * 1e-3); }

std::string ms_cell(const BenchEntry* e) {
  if (!e) return "-";
  return fmt(e->median_ms < 10 ? "%.3f" : "%.1f", e->median_ms) + (e->timed_once ? "~" : "");
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      o += buf;
    }
    else o += c;
  }
  return o;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

struct Summary {
  int shapes = 0, pick_within_10 = 0, pick_within_3 = 0, with_onednn = 0, below_08 = 0;
  double geomean_vs_onednn = 0, worst_vs_onednn = 1e300, worst_pick_ratio = 0;
  std::string worst_shape;
  // Against oneDNN's compute alone on its blocked layouts (forward).
  int with_blocked = 0;
  double geomean_vs_blocked = 0, worst_vs_blocked = 1e300;
  std::string worst_blocked_shape;
};

Summary summarize(const BenchReport& r) {
  Summary s;
  double log_sum = 0, blocked_log_sum = 0;
  for (const auto& sh : r.shapes) {
    const BenchEntry* pick = sh.find("auto");
    if (!pick || !sh.best()) continue;
    ++s.shapes;
    const double ratio = sh.pick_over_best();
    s.pick_within_10 += ratio <= 1.10;
    s.pick_within_3 += ratio <= 1.03;
    s.worst_pick_ratio = std::max(s.worst_pick_ratio, ratio);
    if (const BenchEntry* dnn = sh.find("onednn")) {
      const double speedup = dnn->median_ms / pick->median_ms;
      ++s.with_onednn;
      log_sum += std::log(speedup);
      s.below_08 += speedup < 0.8;
      if (speedup < s.worst_vs_onednn) s.worst_vs_onednn = speedup, s.worst_shape = sh.name;
    }
    if (const BenchEntry* blk = sh.find("onednn_blocked")) {
      const double speedup = blk->median_ms / pick->median_ms;
      ++s.with_blocked;
      blocked_log_sum += std::log(speedup);
      if (speedup < s.worst_vs_blocked) s.worst_vs_blocked = speedup, s.worst_blocked_shape = sh.name;
    }
  }
  if (s.with_onednn) s.geomean_vs_onednn = std::exp(log_sum / s.with_onednn);
  if (s.with_blocked) s.geomean_vs_blocked = std::exp(blocked_log_sum / s.with_blocked);
  return s;
}

}  // namespace

const BenchEntry* BenchShape::find(const std::string& label) const {
  for (const auto& e : entries)
    if (e.label == label) return &e;
  return nullptr;
}

const BenchEntry* BenchShape::best_of(const std::string& algorithm) const {
  const BenchEntry* best = nullptr;
  for (const auto& e : entries)
    if (e.algorithm == algorithm && (!best || e.median_ms < best->median_ms)) best = &e;
  return best;
}

double BenchShape::pick_over_best() const {
  const BenchEntry* pick = find("auto");
  const BenchEntry* best_entry = best();
  if (!pick || !best_entry) return 0;
  const BenchEntry* chosen = find(pick->note);
  if (!chosen || chosen->timed_once) chosen = pick;
  return chosen->median_ms / best_entry->median_ms;
}

const BenchEntry* BenchShape::best() const {
  const BenchEntry* best = nullptr;
  for (const auto& e : entries)
    if (is_fastconv_impl(e) && (!best || e.median_ms < best->median_ms)) best = &e;
  return best;
}

void print_table(const BenchReport& r, std::FILE* out) {
  const bool dnn = std::any_of(r.shapes.begin(), r.shapes.end(), [](const BenchShape& s) { return s.find("onednn"); });
  const bool blk = std::any_of(r.shapes.begin(), r.shapes.end(), [](const BenchShape& s) { return s.find("onednn_blocked"); });
  std::fprintf(out, "fastconv %s bench: %d thread%s, isa %s, FMA peak %.1f GFLOP/s (highest of %d measurements), pick planned in %s mode%s%s\n",
               kVersion, r.threads, r.threads > 1 ? "s" : "", r.isa.c_str(), r.peak_gflops, r.peak_samples, r.mode.c_str(),
               (r.direction == "forward" ? std::string() : ", direction " + r.direction).c_str(),
               (r.post_ops == "none" ? std::string() : ", post-ops " + r.post_ops).c_str());
  std::fprintf(out, "times in ms (median of interleaved runs; ~ timed once: over 15x the fastest)\n\n");
  std::string head = cell("shape", 32) + cell("GFLOP", 7, true);
  for (const char* a : kAlgorithms) head += cell(a, 9, true);
  if (dnn) head += cell("onednn", 9, true);
  if (blk) head += cell("dnn blk", 9, true);
  head += cell("pick", 27) + cell("ms", 9, true) + cell("GFLOP/s", 8, true) + cell("%peak", 6, true) +
          cell("workspace", 10, true) + cell("best", 9) + cell("pick/best", 9, true);
  if (dnn) head += cell("vs onednn", 9, true);
  if (blk) head += cell("vs blk", 8, true);
  std::fprintf(out, "%s\n", head.c_str());
  for (const auto& s : r.shapes) {
    std::string line = cell(s.name, 32) + cell(fmt("%.3f", s.gflop), 7, true);
    for (const char* a : kAlgorithms) line += cell(ms_cell(s.best_of(a)), 9, true);
    if (dnn) line += cell(ms_cell(s.find("onednn")), 9, true);
    if (blk) line += cell(ms_cell(s.find("onednn_blocked")), 9, true);
    const BenchEntry* pick = s.find("auto");
    const BenchEntry* best = s.best();
    if (pick) {
      const double g = gflops(s, *pick);
      line += cell(pick->note, 27) + cell(ms_cell(pick), 9, true) + cell(fmt("%.1f", g), 8, true) +
              cell(fmt("%.0f%%", 100 * g / r.peak_gflops), 6, true) +
              cell(human_bytes(pick->workspace_bytes), 10, true);
    }
    if (best) line += cell(best->algorithm, 9);
    if (pick && best) line += cell(fmt("%.2f", s.pick_over_best()), 9, true);
    if (dnn && pick)
      if (const BenchEntry* d = s.find("onednn")) line += cell(fmt("%.2fx", d->median_ms / pick->median_ms), 9, true);
    if (blk && pick)
      if (const BenchEntry* d = s.find("onednn_blocked")) line += cell(fmt("%.2fx", d->median_ms / pick->median_ms), 8, true);
    std::fprintf(out, "%s\n", line.c_str());
  }
  const Summary sum = summarize(r);
  std::fprintf(out, "\n%d shapes in %.0f s. The pick is within 10%% of the best implementation on %d (within 3%% on %d); worst pick/best %.2f.\n",
               sum.shapes, r.seconds, sum.pick_within_10, sum.pick_within_3, sum.worst_pick_ratio);
  if (sum.with_onednn)
    std::fprintf(out, "Against oneDNN (NCHW, reorders included): geomean %.2fx, worst %.2fx (%s), %d below 0.8x.\n",
                 sum.geomean_vs_onednn, sum.worst_vs_onednn, sum.worst_shape.c_str(), sum.below_08);
  if (sum.with_blocked)
    std::fprintf(out, "Against oneDNN's compute alone on its blocked layouts (no reorders): geomean %.2fx, worst %.2fx (%s).\n",
                 sum.geomean_vs_blocked, sum.worst_vs_blocked, sum.worst_blocked_shape.c_str());
}

void write_json(const BenchReport& r, const std::string& path) {
  std::ostringstream j;
  const Summary sum = summarize(r);
  j << "{\n  \"fastconv_version\": \"" << kVersion << "\",\n  \"threads\": " << r.threads << ",\n  \"isa\": \""
    << json_escape(r.isa) << "\",\n  \"post_ops\": \"" << json_escape(r.post_ops) << "\",\n  \"mode\": \"" << r.mode
    << "\",\n  \"direction\": \"" << r.direction << "\",\n  \"peak_gflops\": " << r.peak_gflops << ",\n  \"peak_samples\": " << r.peak_samples
    << ",\n  \"seconds\": " << r.seconds << ",\n  \"summary\": {\"shapes\": " << sum.shapes
    << ", \"pick_within_10_percent\": " << sum.pick_within_10 << ", \"pick_within_3_percent\": " << sum.pick_within_3
    << ", \"worst_pick_over_best\": " << sum.worst_pick_ratio;
  if (sum.with_onednn)
    j << ", \"geomean_speedup_vs_onednn\": " << sum.geomean_vs_onednn << ", \"worst_speedup_vs_onednn\": "
      << sum.worst_vs_onednn;
  if (sum.with_blocked)
    j << ", \"geomean_speedup_vs_onednn_blocked\": " << sum.geomean_vs_blocked
      << ", \"worst_speedup_vs_onednn_blocked\": " << sum.worst_vs_blocked;
  j << "},\n  \"shapes\": [\n";
  for (std::size_t i = 0; i < r.shapes.size(); ++i) {
    const auto& s = r.shapes[i];
    j << "    {\"name\": \"" << json_escape(s.name) << "\", \"problem\": \"" << s.problem << "\", \"gflop\": " << s.gflop;
    if (const BenchEntry* b = s.best()) j << ", \"best\": \"" << json_escape(b->label) << "\"";
    if (const BenchEntry* p = s.find("auto")) j << ", \"pick\": \"" << json_escape(p->note) << "\"";
    j << ", \"entries\": [\n";
    for (std::size_t k = 0; k < s.entries.size(); ++k) {
      const auto& e = s.entries[k];
      j << "      {\"label\": \"" << json_escape(e.label) << "\", \"algorithm\": \"" << e.algorithm << "\", \"note\": \""
        << json_escape(e.note) << "\", \"median_ms\": " << e.median_ms << ", \"gflops\": " << gflops(s, e)
        << ", \"percent_of_peak\": " << 100 * gflops(s, e) / r.peak_gflops << ", \"workspace_bytes\": "
        << e.workspace_bytes << ", \"timed_once\": " << (e.timed_once ? "true" : "false") << ", \"runs_ms\": [";
      for (std::size_t t = 0; t < e.runs_ms.size(); ++t) j << (t ? ", " : "") << e.runs_ms[t];
      j << "]}" << (k + 1 < s.entries.size() ? "," : "") << "\n";
    }
    j << "    ]}" << (i + 1 < r.shapes.size() ? "," : "") << "\n";
  }
  j << "  ]\n}\n";
  std::ofstream f(path);
  if (!(f << j.str())) throw Error("--json " + path + ": cannot write");
}

// A grouped bar chart: GFLOP/s of each algorithm's best implementation, the pick and oneDNN, per shape.
void write_svg(const BenchReport& r, const std::string& path) {
  struct Series {
    const char* label;
    const char* color;
  };
  std::vector<Series> series = {{"direct", "#4e79a7"}, {"im2col", "#f28e2b"}, {"winograd", "#59a14f"},
                                {"fft", "#b07aa1"},    {"auto", "#e15759"},   {"onednn", "#9c9c9c"}};
  auto value = [&](const BenchShape& s, const std::string& label) -> double {
    const BenchEntry* e = (label == "auto" || label == "onednn") ? s.find(label) : s.best_of(label);
    return e ? gflops(s, *e) : 0.0;
  };
  double vmax = 1;
  for (const auto& s : r.shapes)
    for (const auto& se : series) vmax = std::max(vmax, value(s, se.label));
  const double step = vmax > 200 ? 50 : vmax > 80 ? 20 : vmax > 40 ? 10 : 5;
  vmax = std::ceil(vmax / step) * step;

  const double bar = 7, gap = 12, left = 70, top = 50, height = 360, bottom = 190;
  const double group = bar * double(series.size()) + gap;
  const double width = left + group * double(r.shapes.size()) + 40;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << top + height + bottom
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << left << "\" y=\"22\" font-size=\"15\">fastconv " << kVersion << ": GFLOP/s per layer ("
    << r.threads << " thread" << (r.threads > 1 ? "s" : "") << ", " << xml_escape(r.isa) << ", FMA peak "
    << fmt("%.0f", r.peak_gflops) << " GFLOP/s)</text>\n";
  for (double v = 0; v <= vmax + 1e-9; v += step) {
    const double y = top + height - v / vmax * height;
    o << "<line x1=\"" << left << "\" x2=\"" << width - 30 << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << v
      << "</text>\n";
  }
  o << "<text transform=\"translate(18," << top + height / 2 << ") rotate(-90)\" text-anchor=\"middle\">GFLOP/s</text>\n";
  for (std::size_t i = 0; i < r.shapes.size(); ++i) {
    const auto& s = r.shapes[i];
    const double x0 = left + gap / 2 + group * double(i);
    for (std::size_t k = 0; k < series.size(); ++k) {
      const double v = value(s, series[k].label);
      if (v <= 0) continue;
      const double h = v / vmax * height;
      o << "<rect x=\"" << x0 + bar * double(k) << "\" y=\"" << top + height - h << "\" width=\"" << bar - 1
        << "\" height=\"" << h << "\" fill=\"" << series[k].color << "\"><title>" << xml_escape(s.name) << " "
        << series[k].label << ": " << fmt("%.1f", v) << " GFLOP/s</title></rect>\n";
    }
    const double xl = x0 + group / 2;
    o << "<text transform=\"translate(" << xl << "," << top + height + 10 << ") rotate(55)\">" << xml_escape(s.name)
      << "</text>\n";
  }
  o << "<line x1=\"" << left << "\" x2=\"" << width - 30 << "\" y1=\"" << top + height << "\" y2=\"" << top + height
    << "\" stroke=\"black\"/>\n";
  for (std::size_t k = 0; k < series.size(); ++k) {
    const double x = left + 110 * double(k);
    o << "<rect x=\"" << x << "\" y=\"30\" width=\"10\" height=\"10\" fill=\"" << series[k].color << "\"/>"
      << "<text x=\"" << x + 14 << "\" y=\"39\">" << (std::string(series[k].label) == "auto" ? "pick (auto)" : series[k].label)
      << "</text>\n";
  }
  o << "</svg>\n";
  std::ofstream f(path);
  if (!(f << o.str())) throw Error("--plot " + path + ": cannot write");
}

}  // namespace fastconv::tools
