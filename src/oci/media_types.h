// Media types regdisk reads and writes.
#pragma once

namespace regdisk::oci::media {

inline constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kOciLayerTar[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kOciLayerGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kOciLayerZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char kDockerLayerGzip[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";

}  // namespace regdisk::oci::media

namespace regdisk::oci::annotation {

inline constexpr char kRefName[] = "org.opencontainers.image.ref.name";
inline constexpr char kCreated[] = "org.opencontainers.image.created";
// regdisk's own: recorded on the manifest and on the disk layer.
inline constexpr char kDiskFormat[] = "io.regdisk.disk.format";          // raw | qcow2
inline constexpr char kDiskPath[] = "io.regdisk.disk.path";              // /disk/<name>
inline constexpr char kDiskVirtualSize[] = "io.regdisk.disk.virtual-size";  // bytes
inline constexpr char kDiskStandard[] = "io.regdisk.disk.standard";      // v1alpha | v2

}  // namespace regdisk::oci::annotation
