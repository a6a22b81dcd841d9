// Ephemeral per-VM disks: overlays and empty disks (emptyDisk volumes).
// Overlays: an empty qcow2 v3 whose backing file is a
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

// The qemu backing name of an NBD export on the unix socket `socket`.
std::string NbdBacking(const std::string& socket);

// Creates `overlay` atomically over the NBD export on the unix socket
// `socket` (backing "nbd+unix:///?socket=SOCKET", a lazily served disk),
// whose format is `base_format` and size `virtual_size` (the export's
// bytes cannot be read here: they may not exist yet).
Status CreateNbdOverlay(const std::string& socket, Format base_format, uint64_t virtual_size,
                        const std::string& overlay);

// Creates `path` atomically: an empty sparse qcow2 v3 (no backing file) of
// `size` bytes rounded up to whole 512-byte sectors, as `qemu-img create -f
// qcow2` makes it. Refuses 0 and sizes over kMaxVirtualSize.
Status CreateEmptyDisk(const std::string& path, uint64_t size);

}  // namespace regdisk::disk
