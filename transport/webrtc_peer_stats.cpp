// What a viewer's connection reads from webrtcbin's statistics (get-stats, answered on its
// promise) and from the RTP session's transport-wide feedback: round trip, loss, NACKs, PLIs and
// the delay gradient, into the peer's counters and the congestion report the rate controller takes.
#define GST_USE_UNSTABLE_API
#include <gst/gst.h>

#include <algorithm>
#include <string>

#include "transport/webrtc_peer.hpp"

namespace vdistream::transport {

void WebRtcPeer::on_stats(const GstStructure* stats, int64_t now_ns) {
  CongestionReport report;
  report.now_ns = now_ns;
  struct Found {
    double rtt_s = -1, lost = -1;
    guint nacks = 0, plis = 0;
  } found;
  gst_structure_foreach(
      stats,
      [](GQuark, const GValue* value, gpointer data) -> gboolean {
        if (!GST_VALUE_HOLDS_STRUCTURE(value)) return TRUE;
        auto* f = static_cast<Found*>(data);
        const GstStructure* s = gst_value_get_structure(value);
        const std::string name = gst_structure_get_name(s);
        if (name == "remote-inbound-rtp") {
          gst_structure_get_double(s, "round-trip-time", &f->rtt_s);
          gst_structure_get_double(s, "fraction-lost", &f->lost);
        } else if (name == "outbound-rtp") {
          gst_structure_get_uint(s, "nack-count", &f->nacks);
          gst_structure_get_uint(s, "pli-count", &f->plis);
        }
        return TRUE;
      },
      &found);
  if (found.rtt_s >= 0) report.rtt_ms = found.rtt_s * 1000.0;
  if (found.lost >= 0) report.fraction_lost = found.lost;

  // The RTP session's view of the transport-wide feedback.
  if (GstElement* rtpbin = gst_bin_get_by_name(GST_BIN(webrtc_), "rtpbin")) {
    GObject* session = nullptr;
    g_signal_emit_by_name(rtpbin, "get-internal-session", 0u, &session);
    if (session && g_object_class_find_property(G_OBJECT_GET_CLASS(session), "twcc-stats")) {
      GstStructure* twcc = nullptr;
      g_object_get(session, "twcc-stats", &twcc, nullptr);
      if (twcc) {
        guint recv = 0;
        gdouble loss_pct = -1;
        gint64 dod = 0;
        guint packets_sent = 0;
        if (gst_structure_get_uint(twcc, "bitrate-recv", &recv)) report.received_bps = recv;
        gst_structure_get_uint(twcc, "packets-sent", &packets_sent);
        if (gst_structure_get_double(twcc, "packet-loss-pct", &loss_pct) && loss_pct >= 0 && packets_sent > 0)
          report.fraction_lost = std::max(report.fraction_lost, loss_pct / 100.0);
        if (gst_structure_get_int64(twcc, "avg-delta-of-delta", &dod)) report.delay_gradient_ms = double(dod) / 1e6;
        gst_structure_free(twcc);
      }
    }
    if (session) g_object_unref(session);
    gst_object_unref(rtpbin);
  }
  {
    std::lock_guard lock(counters_mutex_);
    counters_.rtt_ms = report.rtt_ms;
    counters_.fraction_lost = report.fraction_lost;
    counters_.nacks = found.nacks;
    counters_.plis = found.plis;
  }
  if (callbacks_.on_congestion) callbacks_.on_congestion(report);
}

}  // namespace vdistream::transport
