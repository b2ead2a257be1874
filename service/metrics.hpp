// Desktop status as the control API's JSON and as Prometheus text (exposition format 0.0.4):
// pure functions of DesktopStatus values.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "service/desktop_status.hpp"

namespace vdistream::service {

// One desktop: state, encoder and why, rates, counters; with `detailed` also per-stage latency
// percentiles (ms) and the probe's outcome per backend.
nlohmann::json status_json(const DesktopStatus& status, bool detailed);

// Every desktop's figures, one metric family at a time (# HELP, # TYPE, samples), labelled
// desktop="NAME"; latency as summaries in seconds with quantiles 0.5, 0.95, 0.99.
std::string prometheus_text(const std::vector<DesktopStatus>& desktops);

// A Prometheus label value with \, " and newlines escaped.
std::string escape_label_value(const std::string& value);

}  // namespace vdistream::service
