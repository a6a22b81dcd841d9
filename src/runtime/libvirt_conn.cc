#include "runtime/libvirt_conn.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdlib>

namespace regdisk::runtime {
namespace {

std::string LastError() {
  virErrorPtr e = virGetLastError();
  return e && e->message ? e->message : "unknown libvirt error";
}

void Quiet(void*, virErrorPtr) {}  // errors are reported through Status

virConnectPtr C(void* p) { return static_cast<virConnectPtr>(p); }

}  // namespace

StatusOr<std::unique_ptr<LibvirtConn>> LibvirtConn::Open(const std::string& uri_in) {
  std::string uri = uri_in;
  if (uri.empty()) {
    const char* env = std::getenv("LIBVIRT_DEFAULT_URI");
    uri = env && *env ? env : "qemu:///system";
  }
  virSetErrorFunc(nullptr, Quiet);
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (conn == nullptr) {
    return Unavailable("libvirt at " + uri + " is unreachable: " + LastError() +
                       " (start one with scripts/libvirt-start)");
  }
  return std::unique_ptr<LibvirtConn>(new LibvirtConn(conn, uri));
}

LibvirtConn::~LibvirtConn() { virConnectClose(C(conn_)); }

Status LibvirtConn::StartDomain(const std::string& xml) {
  virDomainPtr d = virDomainCreateXML(C(conn_), xml.c_str(), VIR_DOMAIN_NONE);
  if (d == nullptr) return Status(Code::kIo, "libvirt refused to start the domain: " + LastError());
  virDomainFree(d);
  return OkStatus();
}

StatusOr<bool> LibvirtConn::IsActive(const std::string& name) {
  virDomainPtr d = virDomainLookupByName(C(conn_), name.c_str());
  if (d == nullptr) return false;
  int active = virDomainIsActive(d);
  virDomainFree(d);
  if (active < 0) return Status(Code::kIo, "libvirt: " + LastError());
  return active == 1;
}

Status LibvirtConn::Destroy(const std::string& name) {
  virDomainPtr d = virDomainLookupByName(C(conn_), name.c_str());
  if (d == nullptr) return OkStatus();
  int rc = virDomainIsActive(d) == 1 ? virDomainDestroy(d) : 0;
  // A guest that powered off between the check and the destroy (its
  // transient domain gone, or inactive) is stopped.
  if (rc < 0 && virDomainIsActive(d) != 1) rc = 0;
  virDomainFree(d);
  if (rc < 0) return Status(Code::kIo, "libvirt could not stop " + name + ": " + LastError());
  return OkStatus();
}

}  // namespace regdisk::runtime
