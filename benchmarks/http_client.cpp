#include "benchmarks/http_client.hpp"

#include <fmt/format.h>
#include <libsoup/soup.h>

namespace vdistream::bench {

struct HttpClient::Impl {
  GMainContext* context = nullptr;
  SoupSession* session = nullptr;

  // The client's own context as the thread default for the scope of a call.
  struct Pushed {
    explicit Pushed(GMainContext* c) : context(c) { g_main_context_push_thread_default(context); }
    ~Pushed() { g_main_context_pop_thread_default(context); }
    GMainContext* context;
  };
};

HttpClient::HttpClient(std::string base_url, std::string token, std::chrono::seconds timeout)
    : impl_(std::make_unique<Impl>()), base_url_(std::move(base_url)), token_(std::move(token)) {
  impl_->context = g_main_context_new();
  Impl::Pushed pushed(impl_->context);
  impl_->session = soup_session_new_with_options("timeout", guint(timeout.count()), "idle-timeout", guint(timeout.count()),
                                                 nullptr);
}

HttpClient::~HttpClient() {
  {
    Impl::Pushed pushed(impl_->context);
    g_object_unref(impl_->session);
    while (g_main_context_iteration(impl_->context, FALSE)) {
    }
  }
  g_main_context_unref(impl_->context);
}

core::Result<HttpClient::Reply> HttpClient::get(const std::string& path) {
  Impl::Pushed pushed(impl_->context);
  const std::string url = base_url_ + path;
  SoupMessage* message = soup_message_new("GET", url.c_str());
  if (!message) return core::Error{fmt::format("'{}' is not a valid URL", url)};
  if (!token_.empty())
    soup_message_headers_replace(soup_message_get_request_headers(message), "Authorization", ("Bearer " + token_).c_str());
  GError* error = nullptr;
  GBytes* body = soup_session_send_and_read(impl_->session, message, nullptr, &error);
  Reply reply;
  reply.status = soup_message_get_status(message);
  g_object_unref(message);
  if (!body) {
    std::string why = error ? error->message : "no reply";
    g_clear_error(&error);
    return core::Error{fmt::format("GET {}: {}", url, why)};
  }
  gsize size = 0;
  const auto* data = static_cast<const char*>(g_bytes_get_data(body, &size));
  reply.body.assign(data ? data : "", size);
  g_bytes_unref(body);
  return reply;
}

core::Result<nlohmann::json> HttpClient::get_json(const std::string& path) {
  auto reply = get(path);
  if (!reply) return core::Error{reply.error()};
  if (reply->status != 200)
    return core::Error{fmt::format("GET {}{}: HTTP {}: {}", base_url_, path, reply->status, reply->body.substr(0, 300))};
  auto parsed = nlohmann::json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return core::Error{fmt::format("GET {}{}: the reply is not JSON: {}", base_url_, path, reply->body.substr(0, 300))};
  return parsed;
}

}  // namespace vdistream::bench
