#include "benchmarks/private_bus.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/clock.hpp"

namespace vdistream::bench {

namespace {

bool write_bus_config(const std::string& file, const std::string& socket) {
  std::ofstream out(file);
  out << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
         " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
         "<busconfig>\n  <type>session</type>\n  <listen>unix:path="
      << socket
      << "</listen>\n  <auth>EXTERNAL</auth>\n"
         "  <policy context=\"default\">\n    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
         "    <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n  </policy>\n</busconfig>\n";
  return bool(out.flush());
}

}  // namespace

core::Result<std::unique_ptr<PrivateBus>> PrivateBus::start(const std::string& dir, std::chrono::milliseconds limit) {
  const std::string daemon = find_program("dbus-daemon");
  if (daemon.empty()) return core::Error{"dbus-daemon is not installed (apt-get install dbus)"};
  std::unique_ptr<PrivateBus> bus(new PrivateBus());
  bus->socket_ = dir + "/bus";
  const std::string config = dir + "/bus.conf", log = dir + "/dbus.log";
  if (!write_bus_config(config, bus->socket_)) return core::Error{fmt::format("cannot write {}", config)};
  auto child = ChildProcess::spawn({{daemon, "--config-file=" + config, "--nofork", "--nopidfile"}, environment({}, {}), log});
  if (!child) return core::Error{child.error()};
  bus->daemon_ = std::move(*child);
  const int64_t deadline = core::monotonic_now_ns() + int64_t(limit.count()) * 1'000'000;
  while (!std::filesystem::exists(bus->socket_)) {
    if (!bus->daemon_.running())
      return core::Error{fmt::format("dbus-daemon {}: {}", bus->daemon_.exit_description(), file_tail(log, 2000))};
    if (core::monotonic_now_ns() > deadline)
      return core::Error{fmt::format("dbus-daemon made no socket {} within {} ms: {}", bus->socket_, limit.count(),
                                     file_tail(log, 2000))};
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return bus;
}

}  // namespace vdistream::bench
