// Which encoder backends this host can use, found by a real test encode of a small frame on
// each, in preference order; the reason each one was passed over is kept for the status pages.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "encode/encoder.hpp"

namespace vdistream::encode {

struct Backend {
  std::string name;         // "software", later "nvenc", "onevpl", "vaapi"
  std::string description;  // one line for --probe
  std::function<core::Result<std::unique_ptr<Encoder>>(const EncoderConfig&)> create;
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
  static EncoderRegistry builtin();
  static const std::vector<std::string>& default_preference();

  void add(Backend backend);
  const std::vector<Backend>& backends() const { return backends_; }
  const Backend* find(const std::string& name) const;

  // Test-encodes a 256×144 frame with each backend in `preference` (names not built in are
  // reported as such) and records the outcome.
  std::vector<ProbeOutcome> probe(const EncoderConfig& config, const std::vector<std::string>& preference) const;
  // Probes in order and picks the first usable backend.
  core::Result<EncoderChoice> choose(const EncoderConfig& config, const std::vector<std::string>& preference) const;

 private:
  std::vector<Backend> backends_;
};

// Runs one encoder on a small synthetic frame; ok when an IDR access unit comes out.
core::Status test_encode(Encoder& encoder);

}  // namespace vdistream::encode
