// A fresh private directory under $TMPDIR (mode 0700, from mkdtemp) for a benchmark run's
// sockets, passwords and logs, removed with everything in it when this goes away. path() is
// empty when it could not be made (errno says why).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace vdistream::bench {

class PrivateDir {
 public:
  explicit PrivateDir(const std::string& prefix = "vdistream-bench") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~PrivateDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace vdistream::bench
