// A thin owner of a libvirt connection and the few calls regdisk makes:
// start a transient domain from XML, look one up, destroy it. libvirt's own
// error text is carried into the Status.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace regdisk::runtime {

class LibvirtConn {
 public:
  // `uri` empty: $LIBVIRT_DEFAULT_URI, else qemu:///system.
  static StatusOr<std::unique_ptr<LibvirtConn>> Open(const std::string& uri);
  ~LibvirtConn();

  // Starts a transient domain: it disappears from libvirt when it stops.
  Status StartDomain(const std::string& xml);
  StatusOr<bool> IsActive(const std::string& name);
  // Destroys the domain if it is running; not an error when it is not.
  Status Destroy(const std::string& name);
  const std::string& uri() const { return uri_; }

 private:
  LibvirtConn(void* conn, std::string uri) : conn_(conn), uri_(std::move(uri)) {}
  void* conn_;  // virConnectPtr
  std::string uri_;
};

}  // namespace regdisk::runtime
