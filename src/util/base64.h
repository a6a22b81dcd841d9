// Base64 with the standard alphabet (RFC 4648 section 4), as registry auth
// files and Kubernetes Secrets use it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace regdisk {

std::string Base64Encode(std::string_view data);
// Standard alphabet, padding optional; nullopt on anything else.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace regdisk
