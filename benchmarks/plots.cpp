#include "benchmarks/plots.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

extern char** environ;

namespace vdistream::bench {

namespace {

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Source-time windows of `window_s`: kbit/s in each.
std::vector<std::pair<double, double>> bitrate_series(const Run& run, double window_s) {
  std::vector<std::pair<double, double>> out;
  if (run.frames.empty() || run.fps <= 0) return out;
  double end = 0;
  for (const FrameSample& f : run.frames) end = std::max(end, f.t_s);
  const size_t windows = size_t(end / window_s) + 1;
  std::vector<double> bytes(windows, 0);
  for (const FrameSample& f : run.frames) bytes[std::min(windows - 1, size_t(f.t_s / window_s))] += double(f.bytes);
  for (size_t i = 0; i < windows; ++i) out.emplace_back((double(i) + 0.5) * window_s, bytes[i] * 8 / window_s / 1000);
  return out;
}

}  // namespace

std::optional<std::string> run_gnuplot(const std::string& script, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::string program = "gnuplot";
  std::vector<char*> argv{program.data(), const_cast<char*>(script.c_str()), nullptr};
  pid_t pid = 0;
  int err = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return fmt::format("cannot run gnuplot ({}): install gnuplot-nox", strerror(err));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fmt::format("gnuplot failed; see {}", log_path);
  return std::nullopt;
}

std::optional<std::string> draw_plots(const std::string& out_dir, const std::string& name, const std::string& title,
                                      const std::vector<Run>& runs, PlotFiles& files) {
  const std::string data_dir = out_dir + "/" + name + "-data";
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return fmt::format("cannot create {}: {}", data_dir, ec.message());

  struct Series {
    std::string label, cdf, timeline, bitrate;
    size_t colour;  // one colour per implementation, the same in every panel
  };
  // One panel per workload × size, one line per implementation in it.
  std::vector<std::pair<std::string, std::vector<Series>>> panels;
  std::vector<std::string> implementations;
  bool any_bytes = false;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    if (r.frames.empty()) continue;
    auto impl = std::find(implementations.begin(), implementations.end(), r.implementation);
    if (impl == implementations.end()) impl = implementations.insert(impl, r.implementation);
    Series s{r.implementation, fmt::format("{}/{}-cdf.dat", data_dir, i), fmt::format("{}/{}-timeline.dat", data_dir, i),
             fmt::format("{}/{}-bitrate.dat", data_dir, i), size_t(impl - implementations.begin()) + 1};
    std::vector<double> t = totals(r);
    std::sort(t.begin(), t.end());
    std::ofstream cdf(s.cdf), timeline(s.timeline), bitrate(s.bitrate);
    for (size_t k = 0; k < t.size(); ++k) cdf << fmt::format("{:.4f} {:.5f}\n", t[k], double(k + 1) / double(t.size()));
    for (const FrameSample& f : r.frames) timeline << fmt::format("{:.4f} {:.4f}\n", f.t_s, f.total_ms());
    for (const auto& [at, kbps] : bitrate_series(r, 0.5)) bitrate << fmt::format("{:.3f} {:.2f}\n", at, kbps);
    for (const FrameSample& f : r.frames) any_bytes = any_bytes || f.bytes > 0;
    if (!cdf || !timeline || !bitrate) return fmt::format("cannot write the plot data in {}", data_dir);
    const std::string panel = r.workload + " " + r.size;
    auto it = std::find_if(panels.begin(), panels.end(), [&](const auto& p) { return p.first == panel; });
    if (it == panels.end()) it = panels.insert(panels.end(), {panel, {}});
    it->second.push_back(std::move(s));
  }
  if (panels.empty()) return "nothing to plot: no run produced frames";

  const size_t cols = std::min<size_t>(3, panels.size()), rows = (panels.size() + cols - 1) / cols;
  files.script = out_dir + "/" + name + "-plots.gp";
  std::ofstream gp(files.script);
  gp << "# Written by vdistream-bench; run `gnuplot " << name << "-plots.gp` to redraw.\n"
     << fmt::format("set terminal pngcairo size {},{} noenhanced font ',9'\n", 520 * cols, 80 + 360 * rows)
     << "set grid\nset key top left font ',8'\n";
  auto plot = [&](const std::string& png, const std::string& plot_title, const std::string& xlabel, const std::string& ylabel,
                  const std::string& extra, auto file_of, const std::string& style) {
    gp << "set output " << quoted(png) << "\n"
       << fmt::format("set multiplot layout {},{} title {}\n", rows, cols, quoted(plot_title)) << "set xlabel " << quoted(xlabel)
       << "\nset ylabel " << quoted(ylabel) << "\n"
       << extra;
    for (const auto& [panel, series] : panels) {
      gp << "set title " << quoted(panel) << "\nplot ";
      std::vector<std::string> titled;  // repeated runs of an implementation (vm --rounds) share its entry in the key
      for (size_t i = 0; i < series.size(); ++i) {
        const bool repeat = std::find(titled.begin(), titled.end(), series[i].label) != titled.end();
        if (!repeat) titled.push_back(series[i].label);
        gp << (i ? ", \\\n     " : "") << quoted(file_of(series[i])) << " using 1:2 with " << style << " lc " << series[i].colour
           << (repeat ? std::string(" notitle") : " title " + quoted(series[i].label));
      }
      gp << "\n";
    }
    gp << "unset multiplot\nunset logscale\nunset yrange\n";
    files.pngs.push_back(png);
  };
  plot(out_dir + "/" + name + "-cdf.png", title + ": latency CDF (total per frame)", "latency (ms, log scale)",
       "fraction of frames", "set logscale x\nset yrange [0:1]\n", [](const Series& s) { return s.cdf; }, "steps lw 2");
  plot(out_dir + "/" + name + "-timeline.png", title + ": latency per frame", "source time (s)", "latency (ms, log scale)",
       "set logscale y\n", [](const Series& s) { return s.timeline; }, "lines lw 1");
  if (any_bytes)
    plot(out_dir + "/" + name + "-bitrate.png", title + ": bitrate over time (0.5 s windows of source time)",
         "source time (s)", "kbit/s", "", [](const Series& s) { return s.bitrate; }, "linespoints lw 2 pt 7 ps 0.5");
  gp.close();
  if (!gp) return fmt::format("cannot write {}", files.script);
  return run_gnuplot(files.script, out_dir + "/" + name + "-plots.log");
}

}  // namespace vdistream::bench
