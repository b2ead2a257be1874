// Baseline: the GStreamer pipeline a developer would write for the same job, in-process through
// the C API: appsrc ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast ! appsink.
// Capsfilters only pin what is implicit anyway (I420 in BT.601, the matrix vdistream signals, so
// PSNR compares like with like; Annex-B access units out). Stage times come from pad probes:
// convert = pushed → leaving videoconvert, encode = → arriving at appsink.
#include <fmt/format.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include <atomic>
#include <cstring>

#include "benchmarks/contender.hpp"
#include "core/clock.hpp"

namespace vdistream::bench {

namespace {

struct GstUnref {
  void operator()(gpointer p) const { gst_object_unref(p); }
};
using ElementPtr = std::unique_ptr<GstElement, GstUnref>;

GstPadProbeReturn stamp_now(GstPad*, GstPadProbeInfo*, gpointer data) {
  static_cast<std::atomic<int64_t>*>(data)->store(core::monotonic_now_ns());
  return GST_PAD_PROBE_OK;
}

class GstreamerBaseline final : public Contender {
 public:
  ~GstreamerBaseline() override {
    if (pipeline_) gst_element_set_state(pipeline_.get(), GST_STATE_NULL);
  }
  std::string name() const override { return "gstreamer"; }
  std::string description() const override { return description_; }

  core::Status open(const ContenderConfig& c) {
    GError* err = nullptr;
    if (!gst_init_check(nullptr, nullptr, &err)) {
      std::string msg = err ? err->message : "unknown";
      g_clear_error(&err);
      return core::Error{"cannot initialise GStreamer: " + msg};
    }
    // x264's own defaults otherwise differ from vdistream's: an IDR every 250 frames and scene
    // cuts. vdistream uses an infinite GOP without scene cuts; so does this pipeline.
    const unsigned vbv_ms = std::max(1u, unsigned(1000.0 / c.fps + 0.5));
    description_ = fmt::format(
        "appsrc name=src ! videoconvert name=conv ! video/x-raw,format=I420,colorimetry=bt601 ! "
        "x264enc name=enc tune=zerolatency speed-preset={} bitrate={} vbv-buf-capacity={} key-int-max=0 threads={} "
        "option-string=scenecut=0:keyint=infinite ! video/x-h264,stream-format=byte-stream,alignment=au ! "
        "appsink name=sink sync=false",
        c.preset, c.bitrate_kbps, vbv_ms, c.threads);
    pipeline_.reset(gst_parse_launch(description_.c_str(), &err));
    if (!pipeline_ || err) {
      std::string msg = err ? err->message : "unknown";
      g_clear_error(&err);
      return core::Error{fmt::format("cannot build the GStreamer pipeline ({}): is gstreamer1.0-plugins-ugly (x264enc) installed?", msg)};
    }
    src_.reset(gst_bin_get_by_name(GST_BIN(pipeline_.get()), "src"));
    sink_.reset(gst_bin_get_by_name(GST_BIN(pipeline_.get()), "sink"));
    ElementPtr conv(gst_bin_get_by_name(GST_BIN(pipeline_.get()), "conv"));
    int fps_n = 0, fps_d = 1;
    gst_util_double_to_fraction(c.fps, &fps_n, &fps_d);
    GstCaps* caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "BGRx", "width", G_TYPE_INT, c.width, "height",
                                        G_TYPE_INT, c.height, "framerate", GST_TYPE_FRACTION, fps_n, fps_d, nullptr);
    g_object_set(src_.get(), "caps", caps, "format", GST_FORMAT_TIME, "is-live", FALSE, nullptr);
    gst_caps_unref(caps);
    frame_duration_ = gst_util_uint64_scale(GST_SECOND, guint64(fps_d), guint64(fps_n));
    width_ = c.width;
    height_ = c.height;

    GstPad* conv_src = gst_element_get_static_pad(conv.get(), "src");
    gst_pad_add_probe(conv_src, GST_PAD_PROBE_TYPE_BUFFER, stamp_now, &converted_ns_, nullptr);
    gst_object_unref(conv_src);
    GstPad* sink_pad = gst_element_get_static_pad(sink_.get(), "sink");
    gst_pad_add_probe(sink_pad, GST_PAD_PROBE_TYPE_BUFFER, stamp_now, &encoded_ns_, nullptr);
    gst_object_unref(sink_pad);

    if (gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
      return core::Error{"the GStreamer pipeline refused to start: " + bus_error()};
    return {};
  }

  core::Result<Encoded> encode(const core::Frame& frame, const uint8_t* pixels, uint32_t pitch) override {
    const size_t row = size_t(width_) * 4, size = row * size_t(height_);
    GstBuffer* buffer = nullptr;
    if (pitch == row) {
      // Zero copy: GStreamer reads the frame's own mapping and keeps the buffer alive while it does.
      auto* keep = new core::FrameBufferPtr(frame.buffer);
      buffer = gst_buffer_new_wrapped_full(GST_MEMORY_FLAG_READONLY, const_cast<uint8_t*>(pixels), size, 0, size, keep,
                                           [](gpointer p) { delete static_cast<core::FrameBufferPtr*>(p); });
    } else {
      buffer = gst_buffer_new_allocate(nullptr, size, nullptr);
      GstMapInfo map;
      gst_buffer_map(buffer, &map, GST_MAP_WRITE);
      for (int32_t y = 0; y < height_; ++y) memcpy(map.data + size_t(y) * row, pixels + size_t(y) * pitch, row);
      gst_buffer_unmap(buffer, &map);
    }
    GST_BUFFER_PTS(buffer) = GstClockTime(frames_) * frame_duration_;
    GST_BUFFER_DURATION(buffer) = frame_duration_;
    ++frames_;
    converted_ns_ = 0;
    encoded_ns_ = 0;
    const int64_t pushed = core::monotonic_now_ns();
    if (gst_app_src_push_buffer(GST_APP_SRC(src_.get()), buffer) != GST_FLOW_OK)
      return core::Error{"appsrc refused a buffer: " + bus_error()};
    GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink_.get()), 10 * GST_SECOND);
    if (!sample) return core::Error{fmt::format("no access unit from x264enc within 10 s for frame {}: {}", frame.sequence, bus_error())};
    Encoded e;
    GstBuffer* out = gst_sample_get_buffer(sample);
    GstMapInfo map;
    if (out && gst_buffer_map(out, &map, GST_MAP_READ)) {
      e.data.assign(map.data, map.data + map.size);
      gst_buffer_unmap(out, &map);
    }
    gst_sample_unref(sample);
    const int64_t converted = converted_ns_.load(), encoded = encoded_ns_.load();
    if (!converted || !encoded) return core::Error{"a pad probe did not fire"};
    e.convert_ns = converted - pushed;
    e.encode_ns = encoded - converted;
    return e;
  }

 private:
  std::string bus_error() {
    GstBus* bus = gst_element_get_bus(pipeline_.get());
    std::string text = "no error on the bus";
    if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
      GError* err = nullptr;
      gst_message_parse_error(m, &err, nullptr);
      text = err ? err->message : "unknown error";
      g_clear_error(&err);
      gst_message_unref(m);
    }
    gst_object_unref(bus);
    return text;
  }

  std::string description_;
  ElementPtr pipeline_, src_, sink_;
  GstClockTime frame_duration_ = 0;
  uint64_t frames_ = 0;
  int32_t width_ = 0, height_ = 0;
  std::atomic<int64_t> converted_ns_{0}, encoded_ns_{0};
};

}  // namespace

core::Result<std::unique_ptr<Contender>> make_gstreamer_baseline(const ContenderConfig& config) {
  auto b = std::make_unique<GstreamerBaseline>();
  if (core::Status s = b->open(config); !s) return core::Error{s.error()};
  return std::unique_ptr<Contender>(std::move(b));
}

}  // namespace vdistream::bench
