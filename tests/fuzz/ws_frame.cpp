// Client frames on the WebSocket: parse_client_frame must answer every text
// with a command or an error to send back. A resume carries a sequence
// number of 0 or more, and the frame written back from it parses to the
// same command.
#include "check.hpp"
#include "client_frame.hpp"
#include "todo/json.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace todo;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto frame = sync::parse_client_frame(text);
  if (auto* error = std::get_if<std::string>(&frame)) {
    FUZZ_CHECK(!error->empty());
    return 0;
  }
  auto after = std::get<sync::resume_command>(frame).after;
  FUZZ_CHECK(after >= 0);
  json::writer w;
  w.begin_object().key("type").value("resume").key("after").value(after).end_object();
  auto again = sync::parse_client_frame(w.str());
  auto* resume = std::get_if<sync::resume_command>(&again);
  FUZZ_CHECK(resume != nullptr && resume->after == after);
  return 0;
}
