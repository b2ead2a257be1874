// A spice-server char device instance whose writes and reads (spice-server's calls, on the
// desktop's thread) go to its owner's write(buf, len) and read(buf, len); state and events are
// not used. Owner::kDeviceDescription names it to spice-server.
#pragma once

#include <spice.h>

namespace vdistream::spice {

template <class Owner>
class CharDevice {
 public:
  // `portname` only for subtype "port"; both must outlive the device (string literals).
  CharDevice(Owner* owner, const char* subtype, const char* portname = nullptr) : owner_(owner) {
    sin_.base.sif = &kInterface.base;
    sin_.subtype = subtype;
    sin_.portname = portname;
  }
  CharDevice(const CharDevice&) = delete;
  CharDevice& operator=(const CharDevice&) = delete;

  SpiceCharDeviceInstance* sin() { return &sin_; }

 private:
  // spice-server hands back the instance pointer, which is this object's first member.
  static Owner* owner_of(SpiceCharDeviceInstance* sin) { return reinterpret_cast<CharDevice*>(sin)->owner_; }
  static void state(SpiceCharDeviceInstance*, int) {}
  static int write(SpiceCharDeviceInstance* sin, const uint8_t* buf, int len) { return owner_of(sin)->write(buf, len); }
  static int read(SpiceCharDeviceInstance* sin, uint8_t* buf, int len) { return owner_of(sin)->read(buf, len); }
  static void event(SpiceCharDeviceInstance*, uint8_t) {}

  static inline const SpiceCharDeviceInterface kInterface = {
      {SPICE_INTERFACE_CHAR_DEVICE, Owner::kDeviceDescription, SPICE_INTERFACE_CHAR_DEVICE_MAJOR,
       SPICE_INTERFACE_CHAR_DEVICE_MINOR},
      state,
      write,
      read,
      event,
      spice_char_device_flags(0),
  };

  SpiceCharDeviceInstance sin_{};  // first member (see owner_of)
  Owner* owner_;
};

}  // namespace vdistream::spice
