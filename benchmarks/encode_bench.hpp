// `vdistream-bench encode`: the same synthetic frames through vdistream's encoder backends and
// the two baselines (GStreamer x264enc pipeline, FFmpeg libswscale + libx264), one frame at a
// time and as fast as each goes. Per frame: conversion and encode time, size, the barcode read
// back after decoding (libavcodec), luma PSNR against the source.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "benchmarks/progress.hpp"
#include "benchmarks/report.hpp"

namespace vdistream::bench {

struct EncodeBenchOptions {
  std::string backend = "all";  // a vdistream backend name, or every one the probe accepts
  std::vector<std::string> baselines{"gstreamer", "ffmpeg"};
  std::vector<std::string> workloads{"typing", "window-drag", "fullmotion"};
  std::vector<std::string> sizes{"1280x720", "1920x1080"};
  double fps = 60;            // source time: bitrate is per second of it
  uint32_t frames = 90;       // measured frames per workload × size
  uint32_t warmup = 10;       // frames encoded first and left out (encoder start, first IDR)
  uint32_t bitrate_kbps = 6000;
  std::string preset = "ultrafast";
  int threads = 2;
  uint32_t psnr_every = 4;    // luma PSNR on every Nth frame (0 = never)
};

struct EncodeBenchResult {
  std::vector<Run> runs;
  nlohmann::json ratios = nlohmann::json::array();  // baseline p50 / vdistream p50 per stage: > 1 = vdistream faster
  nlohmann::json contenders = nlohmann::json::object();  // name → settings
  nlohmann::json probe = nlohmann::json::array();
};

// Number of frames the run will push through each contender, for the progress bar.
uint64_t encode_bench_units(const EncodeBenchOptions& o);
EncodeBenchResult run_encode_bench(const EncodeBenchOptions& o, Progress& progress);
void print_encode_table(const EncodeBenchOptions& o, const EncodeBenchResult& result);

}  // namespace vdistream::bench
