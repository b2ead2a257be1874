// Turns a source spec from the command line or the configuration into a Source.
#pragma once

#include <memory>
#include <string>

#include "capture/source.hpp"
#include "core/status.hpp"

namespace vdistream::service {

// "synthetic:WORKLOAD[@WxH][@FPS]", "qemu-dbus:ADDRESS[#console=N]" or "qemu-qmp:SOCKET[#console=N]".
// `name`: the desktop's name, in the source's log lines. `audio`: take the VM's sound (QEMU
// sources; a synthetic desktop is silent).
core::Result<std::unique_ptr<capture::Source>> make_source(const std::string& spec,
                                                           const std::string& name = "default", bool audio = false);

// The text --help shows for SPEC.
std::string source_spec_help();

}  // namespace vdistream::service
