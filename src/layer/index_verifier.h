// Checks a whole v2 disk layer blob against its chunk index, in one pass
// over the blob, so that a layer whose index shows one disk to v2 readers
// while its tar shows another to v1 readers (skopeo, containerd, the v1
// extractor) is refused. Both views are compared with the index:
//   - the v2 view: each data entry's member, at its blob offset, decodes on
//     its own to bytes with the entry's sha256, and the index member decodes
//     to bytes with the anchored digest;
//   - the v1 view: the blob decompressed as one stream and read as tar
//     (libarchive, as the v1 extractor does) holds only directories, exactly
//     one regular file disk/<name> whose bytes (holes as zeros) hash, range
//     by range, to the index's chunk digests (and are zero in its zero
//     extents) with the index's disk size, then .regdisk/index as the last
//     entry, whose bytes have the anchored digest.
// The layer digest and diff_id are the caller's to check (the pull path
// already does). `index` must come from OpenIndex (validated).
#pragma once

#include "layer/disk_index.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::layer {

Status VerifyLayer(oci::BlobReader& blob, const IndexAnchor& anchor, const DiskIndex& index);

}  // namespace regdisk::layer
