// PNG plots of a report, drawn by gnuplot (Debian's gnuplot-nox): latency CDF per configuration,
// per-frame latency timeline, bitrate over time. We write the data files and a gnuplot script
// next to the PNGs (so a plot can be redrawn or restyled by hand) and run gnuplot on it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "benchmarks/report.hpp"

namespace vdistream::bench {

struct PlotFiles {
  std::vector<std::string> pngs;
  std::string script;
};

// Runs gnuplot on `script`, its output into `log_path`; an error when gnuplot is missing or fails.
std::optional<std::string> run_gnuplot(const std::string& script, const std::string& log_path);

// Draws `<out>/<name>-cdf.png`, `<name>-timeline.png` and (when something was encoded)
// `<name>-bitrate.png`. Returns an error when gnuplot is missing or fails.
std::optional<std::string> draw_plots(const std::string& out_dir, const std::string& name, const std::string& title,
                                      const std::vector<Run>& runs, PlotFiles& files);

}  // namespace vdistream::bench
