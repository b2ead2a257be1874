#include "service/source_factory.hpp"

#include <fmt/format.h>

#include "capture/synthetic/synthetic_source.hpp"

namespace vdistream::service {

core::Result<std::unique_ptr<capture::Source>> make_source(const std::string& spec) {
  if (spec.rfind("synthetic:", 0) == 0) {
    auto config = capture::parse_synthetic_spec(spec);
    if (!config) return core::Error{config.error()};
    auto source = capture::SyntheticSource::create(*config);
    if (!source) return core::Error{source.error()};
    return std::unique_ptr<capture::Source>(std::move(*source));
  }
  if (spec.rfind("qemu-dbus:", 0) == 0 || spec.rfind("qemu-qmp:", 0) == 0)
    return core::Error{fmt::format("'{}': QEMU sources are not in this version yet (only synthetic:...)", spec)};
  return core::Error{fmt::format("'{}' is not a source spec; expected synthetic:WORKLOAD[@WIDTHxHEIGHT][@FPS]", spec)};
}

std::string source_spec_help() {
  return fmt::format(
      "SPEC is synthetic:WORKLOAD[@WIDTHxHEIGHT][@FPS], a generated desktop\n"
      "  WORKLOAD: {}\n"
      "  size up to 3840x2160 (default 1280x720), FPS up to 240 (default 30)\n"
      "  e.g. synthetic:typing@1920x1080@60",
      capture::workload_list());
}

}  // namespace vdistream::service
