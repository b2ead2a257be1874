// RAII for GLib/GIO objects: unique_ptrs with the right unref.
#pragma once

#include <gio/gio.h>

#include <memory>
#include <string>
#include <utility>

namespace vdistream::glib {

// Calls `unref` on a pointer that is not null.
template <auto unref>
struct Unref {
  template <typename T>
  void operator()(T* p) const {
    if (p) unref(p);
  }
};

template <typename T>
using GObjectPtr = std::unique_ptr<T, Unref<g_object_unref>>;
using GVariantPtr = std::unique_ptr<GVariant, Unref<g_variant_unref>>;
using GErrorPtr = std::unique_ptr<GError, Unref<g_error_free>>;
using GMainContextPtr = std::unique_ptr<GMainContext, Unref<g_main_context_unref>>;
using GDBusNodeInfoPtr = std::unique_ptr<GDBusNodeInfo, Unref<g_dbus_node_info_unref>>;

struct GSourceUnref {
  void operator()(GSource* s) const {
    if (s) {
      g_source_destroy(s);
      g_source_unref(s);
    }
  }
};
using GSourcePtr = std::unique_ptr<GSource, GSourceUnref>;

// Collects a GError out-parameter: `GErrorSlot err; f(..., err.out()); if (err) ... err.message()`.
class GErrorSlot {
 public:
  GErrorSlot() = default;
  ~GErrorSlot() { take(); }
  GErrorSlot(const GErrorSlot&) = delete;
  GErrorSlot& operator=(const GErrorSlot&) = delete;
  GError** out() {
    error_.reset();
    raw_ = nullptr;
    return &raw_;
  }
  explicit operator bool() { return take() != nullptr; }
  std::string message() {
    GError* e = take();
    return e ? std::string(e->message) : std::string("no error");
  }
  bool matches(GQuark domain, int code) {
    GError* e = take();
    return e && g_error_matches(e, domain, code);
  }

 private:
  GError* take() {
    if (raw_) error_.reset(std::exchange(raw_, nullptr));
    return error_.get();
  }
  GError* raw_ = nullptr;
  GErrorPtr error_;
};

// Makes `context` the thread-default main context for the life of this object.
class ThreadDefaultContext {
 public:
  explicit ThreadDefaultContext(GMainContext* context) : context_(context) { g_main_context_push_thread_default(context_); }
  ~ThreadDefaultContext() { g_main_context_pop_thread_default(context_); }
  ThreadDefaultContext(const ThreadDefaultContext&) = delete;
  ThreadDefaultContext& operator=(const ThreadDefaultContext&) = delete;

 private:
  GMainContext* context_;
};

}  // namespace vdistream::glib
