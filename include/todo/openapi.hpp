#pragma once
// docs/openapi.yaml as compact JSON, embedded at build time.
#include <string_view>

namespace todo {

std::string_view openapi_json();

}  // namespace todo
