#include "encode/audio/microphone.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "encode/audio/audio_converter.hpp"

namespace vdistream::encode {

namespace {

// One frame of silence in `f`'s own bytes: zero, or the middle of an unsigned range.
std::vector<uint8_t> silent_frame(const core::AudioFormat& f) {
  std::vector<uint8_t> frame(f.bytes_per_frame, 0);
  if (f.is_float || f.is_signed) return frame;
  const size_t width = f.bits / 8;
  for (size_t i = 0; i + width <= frame.size(); i += width) frame[f.big_endian ? i : i + width - 1] = 0x80;
  return frame;
}

}  // namespace

void MicrophoneMixer::SwrFree::operator()(SwrContext* ctx) const { swr_free(&ctx); }

MicrophoneMixer::MicrophoneMixer(const core::Clock& clock) : clock_(clock) {}
MicrophoneMixer::~MicrophoneMixer() = default;

void MicrophoneMixer::on_listening(ListeningCallback callback) {
  bool now;
  {
    std::lock_guard lock(mutex_);
    callbacks_.push_back(callback);
    now = listening_locked();
  }
  callback(now);
}

bool MicrophoneMixer::listening_locked() const {
  return std::any_of(streams_.begin(), streams_.end(), [](const auto& s) { return s.second.listening; });
}

bool MicrophoneMixer::talking_locked() const {
  return !talker_.empty() && clock_.now_ns() - talker_last_ns_ < kTalkerHoldNs;
}

bool MicrophoneMixer::listening() const {
  std::lock_guard lock(mutex_);
  return listening_locked();
}

void MicrophoneMixer::push(const std::string& source, const int16_t* samples, size_t frames) {
  int peak = 0;
  for (size_t i = 0; i < frames * core::kAudioChannels; ++i) peak = std::max(peak, std::abs(int(samples[i])));
  std::lock_guard lock(mutex_);
  stats_.frames_in += frames;
  const bool talking = talking_locked();
  if (talking && talker_ != source) {
    stats_.frames_refused += frames;
    return;
  }
  if (peak < kQuietPeak) {
    // A client whose microphone is open sends silence all along: it holds nothing, and the VM
    // hears silence anyway when nobody talks.
    if (!talking) {
      stats_.quiet_frames += frames;
      return;
    }
  } else {
    talker_ = source;
    talker_last_ns_ = clock_.now_ns();
  }
  if (!listening_locked()) return;  // nobody to hear it: never kept
  buffered_.insert(buffered_.end(), samples, samples + frames * core::kAudioChannels);
  const size_t limit = kMaxBufferedFrames * core::kAudioChannels;
  if (buffered_.size() > limit) {
    const size_t excess = buffered_.size() - limit;
    buffered_.erase(buffered_.begin(), buffered_.begin() + ptrdiff_t(excess));
    stats_.frames_dropped += excess / core::kAudioChannels;
  }
}

bool MicrophoneMixer::converter_for(Stream& s, const core::AudioFormat& format) {
  if (s.swr && s.format == format) return true;
  s.swr.reset();
  s.ready.clear();
  if (!format.check()) return false;
  AVChannelLayout in_layout{}, out_layout{};
  av_channel_layout_default(&in_layout, int(core::kAudioChannels));
  av_channel_layout_default(&out_layout, int(format.channels));
  SwrContext* ctx = nullptr;
  int err = swr_alloc_set_opts2(&ctx, &out_layout, AVSampleFormat(pcm_sample_format(format)), int(format.rate),
                                &in_layout, AV_SAMPLE_FMT_S16, int(core::kAudioRate), 0, nullptr);
  av_channel_layout_uninit(&in_layout);
  av_channel_layout_uninit(&out_layout);
  std::unique_ptr<SwrContext, SwrFree> swr(ctx);
  if (err >= 0) err = swr_init(swr.get());
  if (err < 0) return false;
  s.swr = std::move(swr);
  s.format = format;
  return true;
}

size_t MicrophoneMixer::read(uint64_t stream, const core::AudioFormat& format, size_t frames, uint8_t* out) {
  std::lock_guard lock(mutex_);
  ++stats_.reads;
  Stream& s = streams_[stream];
  if (!converter_for(s, format)) return 0;
  frames = std::min(frames, kMaxReadFrames);
  const size_t bpf = format.bytes_per_frame;
  const size_t want = frames * bpf;
  // What a viewer said, converted until the VM has what it asked for or nothing is left.
  while (s.ready.size() < want && !buffered_.empty()) {
    const size_t need = (want - s.ready.size()) / bpf;
    const size_t in_frames =
        std::min(buffered_.size() / core::kAudioChannels, need * core::kAudioRate / format.rate + 1);
    take_.assign(buffered_.begin(), buffered_.begin() + ptrdiff_t(in_frames * core::kAudioChannels));
    buffered_.erase(buffered_.begin(), buffered_.begin() + ptrdiff_t(in_frames * core::kAudioChannels));
    int peak = 0;
    for (int16_t v : take_) peak = std::max(peak, std::abs(int(v)));
    stats_.peak = peak;
    const int capacity = swr_get_out_samples(s.swr.get(), int(in_frames));
    if (capacity <= 0) break;
    converted_.resize(size_t(capacity) * bpf);
    uint8_t* dst = converted_.data();
    const auto* src = reinterpret_cast<const uint8_t*>(take_.data());
    const int n = swr_convert(s.swr.get(), &dst, capacity, &src, int(in_frames));
    if (n < 0) break;
    const size_t bytes = size_t(n) * bpf;
    if (pcm_needs_rewrite(format)) {
      std::vector<uint8_t> own;
      pcm_rewrite(format, converted_.data(), bytes, own);
      s.ready.insert(s.ready.end(), own.begin(), own.end());
    } else {
      s.ready.insert(s.ready.end(), converted_.begin(), converted_.begin() + ptrdiff_t(bytes));
    }
  }
  size_t n = std::min(s.ready.size(), want) / bpf;
  if (n > 0) {
    std::memcpy(out, s.ready.data(), n * bpf);
    s.ready.erase(s.ready.begin(), s.ready.begin() + ptrdiff_t(n * bpf));
  } else if (!talking_locked()) {
    // Nobody talks: silence keeps the guest's capture running, as a quiet microphone would.
    const auto silence = silent_frame(format);
    for (size_t i = 0; i < frames; ++i) std::memcpy(out + i * bpf, silence.data(), bpf);
    n = frames;
    stats_.silent_frames_to_vm += frames;
  }
  // (Talking, with nothing here yet: a short read; the next packet is on its way.)
  stats_.frames_to_vm += n;
  return n;
}

void MicrophoneMixer::vm_listening(uint64_t stream, bool on) {
  std::vector<ListeningCallback> callbacks;
  bool before, after;
  {
    std::lock_guard lock(mutex_);
    before = listening_locked();
    if (on) {
      streams_[stream].listening = true;
    } else {
      streams_.erase(stream);
    }
    after = listening_locked();
    if (!after) buffered_.clear();
    stats_.vm_listening = after;
    if (before != after) callbacks = callbacks_;
  }
  for (auto& c : callbacks) c(after);
}

MicrophoneStats MicrophoneMixer::stats() const {
  std::lock_guard lock(mutex_);
  MicrophoneStats s = stats_;
  s.talker = talking_locked() ? talker_ : "";
  s.vm_listening = listening_locked();
  return s;
}

}  // namespace vdistream::encode
