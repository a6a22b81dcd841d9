// Ephemeral per-VM overlays: an empty qcow2 v3 whose backing file is a
// cached disk, with the backing format stated in the header (qemu never
// probes it). Written directly (four clusters: header, refcount table,
// refcount block, L1 table: the layout `qemu-img create` makes) so a VM's
// prepare costs no subprocess; tests check the result with qemu-img check.
#pragma once

#include <string>

#include "disk/format.h"
#include "util/status.h"

namespace regdisk::disk {

// Creates `overlay` atomically (temp + fsync + rename) over `base`, an
// absolute path, whose format is `base_format`; the overlay's virtual size is
// the base's.
Status CreateOverlay(const std::string& base, Format base_format, const std::string& overlay);

}  // namespace regdisk::disk
