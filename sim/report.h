#pragma once
// The report: results.csv, a markdown summary and SVG plots. Each is built as text by a pure
// function; main writes the files.
#include <string>
#include <vector>

#include "sim/engine.h"

namespace ebb::sim {

struct ResultRow {
  std::string workload;
  std::string policy;
  Metrics metrics;
};

// One row per workload and policy, with the columns in order.
std::string results_csv(const std::vector<ResultRow>& rows);

// A markdown table per workload; `preamble` (the command line, the settings) goes first.
std::string summary_markdown(const std::vector<ResultRow>& rows, const std::string& preamble);

struct PlotLine {
  std::string policy;
  PlotSeries series;
};

// CPU limit of each policy against the container's demand (10 ms peaks) over time, and the
// same for memory.max against memory demand, as a standalone SVG.
std::string plot_svg(const std::string& title, const std::vector<PlotLine>& lines);

}  // namespace ebb::sim
