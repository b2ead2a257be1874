#include "service/source_factory.hpp"

#include <fmt/format.h>

#include "capture/qemu/qemu_source.hpp"
#include "capture/synthetic/synthetic_source.hpp"

namespace vdistream::service {

core::Result<std::unique_ptr<capture::Source>> make_source(const std::string& spec, const std::string& name, bool audio) {
  if (spec.rfind("synthetic:", 0) == 0) {
    auto config = capture::parse_synthetic_spec(spec);
    if (!config) return core::Error{config.error()};
    auto source = capture::SyntheticSource::create(*config);
    if (!source) return core::Error{source.error()};
    return std::unique_ptr<capture::Source>(std::move(*source));
  }
  if (capture::qemu::is_qemu_spec(spec)) {
    auto config = capture::qemu::parse_qemu_spec(spec);
    if (!config) return core::Error{config.error()};
    config->name = name;
    config->audio = audio;
    auto source = capture::qemu::QemuSource::create(*config);
    if (!source) return core::Error{source.error()};
    return std::unique_ptr<capture::Source>(std::move(*source));
  }
  return core::Error{fmt::format(
      "'{}' is not a source spec; expected synthetic:WORKLOAD[@WIDTHxHEIGHT][@FPS], qemu-dbus:ADDRESS or qemu-qmp:SOCKET",
      spec)};
}

std::string source_spec_help() {
  return fmt::format(
      "SPEC is synthetic:WORKLOAD[@WIDTHxHEIGHT][@FPS], a generated desktop\n"
      "  WORKLOAD: {}\n"
      "  size up to 3840x2160 (default 1280x720), FPS up to 240 (default 30)\n"
      "  e.g. synthetic:typing@1920x1080@60\n"
      "or qemu-dbus:ADDRESS[#console=N], a QEMU VM's display on a D-Bus bus\n"
      "  (-display dbus,addr=ADDRESS; libvirt: unix:path=/run/libvirt/qemu/dbus/ID-NAME.sock; or 'session')\n"
      "or qemu-qmp:SOCKET[#console=N], peer to peer through QEMU's QMP socket (-display dbus,p2p=yes)\n"
      "  N: a ConsoleID (default: the first graphic console)",
      capture::workload_list());
}

}  // namespace vdistream::service
