// Which encoder backends this host can use, found by a real test encode of a small frame on
// each, in preference order; the reason each one was passed over is kept for the status pages.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "encode/encoder.hpp"
#include "encode/hardware_options.hpp"

namespace vdistream::encode {

struct Backend {
  std::string name;         // "software", later "nvenc", "onevpl", "vaapi"
  std::string description;  // one line for --probe
  std::function<core::Result<std::unique_ptr<Encoder>>(const EncoderConfig&)> create;
  bool imports_dmabuf = false;  // test-encode a real dma-buf (udmabuf) where the host can make one
};

struct ProbeOutcome {
  std::string backend;
  bool usable = false;
  std::string reason;  // why it was rejected, or what the test encode produced
};

struct EncoderChoice {
  std::string backend;
  std::string why;  // a sentence for operators: why this one and not the others
  std::vector<ProbeOutcome> outcomes;
};

class EncoderRegistry {
 public:
  // Every backend compiled into this build, in the default preference order.
  static EncoderRegistry builtin(const HardwareOptions& hw = {});
  static const std::vector<std::string>& default_preference();

  void add(Backend backend);
  const std::vector<Backend>& backends() const { return backends_; }
  const Backend* find(const std::string& name) const;

  // Test-encodes a 256×144 frame with each backend in `preference` (names not built in are
  // reported as such) and records the outcome.
  std::vector<ProbeOutcome> probe(const EncoderConfig& config, const std::vector<std::string>& preference) const;
  // Probes in order and picks the first usable backend.
  core::Result<EncoderChoice> choose(const EncoderConfig& config, const std::vector<std::string>& preference) const;
  // The chosen backend wrapped with its fallbacks: its create() makes a FallbackEncoder over the
  // chosen backend and every later one the probe found usable, so a backend that refuses a new
  // session or fails mid-stream hands over to the next with an IDR.
  Backend with_fallback(const EncoderChoice& choice, const std::string& log_scope = "encode") const;

 private:
  std::vector<Backend> backends_;
};

// Runs one encoder on a small synthetic frame; ok when an IDR access unit comes out. With
// `dmabuf`, the frame is a real dma-buf (a memfd turned into one by /dev/udmabuf) when the host
// allows it, as hardware importers need; otherwise, and without it, a memfd.
core::Status test_encode(Encoder& encoder, bool dmabuf = false);

// A linear XRGB8888 dma-buf made from a memfd by /dev/udmabuf (see vaapi/udmabuf.hpp), holding
// the probe picture; an error says why not (no module, no permission).
core::Result<core::FrameBufferPtr> make_udmabuf(int32_t width, int32_t height);

}  // namespace vdistream::encode
