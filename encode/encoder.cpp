#include "encode/encoder.hpp"

namespace vdistream::encode {

const char* profile_name(H264Profile p) {
  switch (p) {
    case H264Profile::ConstrainedBaseline: return "constrained-baseline";
    case H264Profile::Main: return "main";
  }
  return "?";
}

bool parse_profile(const std::string& name, H264Profile& out) {
  if (name == "constrained-baseline" || name == "baseline") {
    out = H264Profile::ConstrainedBaseline;
    return true;
  }
  if (name == "main") {
    out = H264Profile::Main;
    return true;
  }
  return false;
}

}  // namespace vdistream::encode
