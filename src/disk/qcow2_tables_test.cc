// Qcow2Header::CheckTables and CheckTableEntries: where the refcount,
// snapshot and L1 tables, the refcount blocks and the L2 tables may lie.
#include <gtest/gtest.h>

#include <string>

#include "disk/qcow2.h"

namespace regdisk::disk {
namespace {

constexpr uint64_t kCluster = 64 << 10;
constexpr uint64_t kFile = 4 * kCluster;  // header, refcount table, refcount block, L1 table

// What qemu-img create makes for 1 GiB: the refcount table in cluster 1, its
// block in cluster 2, the L1 table (2 entries of 512 MiB) in cluster 3.
Qcow2Header Good() {
  Qcow2Header h;
  h.version = 3;
  h.cluster_bits = 16;
  h.size = 1 << 30;
  h.refcount_table_offset = kCluster;
  h.refcount_table_clusters = 1;
  h.l1_table_offset = 3 * kCluster;
  h.l1_size = 2;
  return h;
}

std::string Entries(std::initializer_list<uint64_t> values) {
  std::string out;
  for (uint64_t v : values) {
    for (int i = 7; i >= 0; --i) out += static_cast<char>(v >> (8 * i));
  }
  return out;
}

// The table check's message, or "ok".
std::string Tables(const Qcow2Header& h, uint64_t file = kFile) {
  Status s = h.CheckTables(file);
  return s.ok() ? "ok" : s.message();
}

std::string L1(const Qcow2Header& h, std::initializer_list<uint64_t> entries) {
  Status s = h.CheckTableEntries(Qcow2Header::Table::kL1, Entries(entries), kFile);
  return s.ok() ? "ok" : s.message();
}

TEST(Qcow2Tables, WhatQemuImgMakesPasses) {
  EXPECT_EQ(Tables(Good()), "ok");
  Qcow2Header h = Good();
  h.nb_snapshots = 2;  // 80 bytes after the refcount block, in cluster 2's place
  h.snapshots_offset = 2 * kCluster;
  EXPECT_EQ(Tables(h), "ok");
}

TEST(Qcow2Tables, RefcountTableChecks) {
  Qcow2Header h = Good();
  h.refcount_table_clusters = 129;  // 129 * 64 KiB > 8 MiB
  EXPECT_EQ(Tables(h), "qcow2 refcount table is 8454144 bytes, over qemu's limit of 8388608");
  h = Good();
  h.refcount_table_clusters = 0;
  EXPECT_EQ(Tables(h), "qcow2 refcount table is empty");
  h = Good();
  h.refcount_table_offset = kCluster + 512;
  EXPECT_EQ(Tables(h), "qcow2 refcount table offset 0x10200 is not aligned to a cluster (65536 bytes)");
  h = Good();
  h.refcount_table_offset = 1ull << 40;
  EXPECT_EQ(Tables(h), "qcow2 refcount table (offset 0x10000000000, 65536 bytes) lies outside the file (262144 bytes)");
  h.refcount_table_offset = ~0ull << 16;  // offset + size overflows
  EXPECT_NE(Tables(h).find("lies outside the file"), std::string::npos);
  h = Good();
  h.refcount_table_offset = 0;
  EXPECT_EQ(Tables(h), "qcow2 refcount table at offset 0x0 overlaps the header");
}

TEST(Qcow2Tables, SnapshotTableChecks) {
  Qcow2Header h = Good();
  h.nb_snapshots = 65537;
  EXPECT_EQ(Tables(h), "qcow2 has 65537 snapshots, over qemu's limit of 65536");
  h.nb_snapshots = 1;
  h.snapshots_offset = 1 << 30;
  EXPECT_EQ(Tables(h), "qcow2 snapshot table (offset 0x40000000, 40 bytes) lies outside the file (262144 bytes)");
  h.snapshots_offset = 0;
  EXPECT_EQ(Tables(h), "qcow2 snapshot table at offset 0x0 overlaps the header");
  h.nb_snapshots = 0;  // no snapshots: the offset means nothing
  EXPECT_EQ(Tables(h), "ok");
}

TEST(Qcow2Tables, L1TableChecks) {
  Qcow2Header h = Good();
  h.l1_size = (32 << 20) / 8 + 1;
  EXPECT_EQ(Tables(h), "qcow2 L1 table is 33554440 bytes, over qemu's limit of 33554432");
  h = Good();
  h.l1_size = 1;
  EXPECT_EQ(Tables(h), "qcow2 L1 table has 1 entries, too few for the virtual size (2 needed)");
  h.incompatible_features = 1 << 4;  // extended L2: an entry maps half as much
  h.l1_size = 2;
  EXPECT_EQ(Tables(h), "qcow2 L1 table has 2 entries, too few for the virtual size (4 needed)");
  h = Good();
  h.l1_table_offset = 0x7fff0000;
  EXPECT_EQ(Tables(h), "qcow2 L1 table (offset 0x7fff0000, 16 bytes) lies outside the file (262144 bytes)");
  h.l1_table_offset = 0;
  EXPECT_EQ(Tables(h), "qcow2 L1 table at offset 0x0 overlaps the header");
}

TEST(Qcow2Tables, TablesMustNotOverlap) {
  Qcow2Header h = Good();
  h.l1_table_offset = h.refcount_table_offset;
  EXPECT_EQ(Tables(h), "qcow2 refcount table and L1 table overlap");
  h = Good();
  h.nb_snapshots = 1;
  h.snapshots_offset = h.l1_table_offset;
  EXPECT_EQ(Tables(h), "qcow2 snapshot table and L1 table overlap");
}

TEST(Qcow2Tables, ChecksRunInQemusOrder) {
  // Every table is bad: the refcount table is named, then the snapshot
  // table once it is fixed, then the L1 table.
  Qcow2Header h = Good();
  h.refcount_table_offset = 0;
  h.nb_snapshots = 1;
  h.snapshots_offset = 1 << 30;
  h.l1_table_offset = 1 << 30;
  EXPECT_NE(Tables(h).find("refcount table"), std::string::npos) << Tables(h);
  h.refcount_table_offset = kCluster;
  EXPECT_NE(Tables(h).find("snapshot table"), std::string::npos) << Tables(h);
  h.nb_snapshots = 0;
  EXPECT_NE(Tables(h).find("L1 table"), std::string::npos) << Tables(h);
}

TEST(Qcow2Tables, L1EntriesPointToL2TablesInsideTheFile) {
  const Qcow2Header h = Good();
  constexpr uint64_t kCopied = 1ull << 63;
  EXPECT_EQ(L1(h, {0, 0}), "ok");                        // nothing allocated
  EXPECT_EQ(L1(h, {kCopied | 2 * kCluster, 0}), "ok");   // an L2 table in cluster 2
  EXPECT_EQ(L1(h, {0, kCopied | 1ull << 30}),
            "qcow2 L1 table entry 1: qcow2 L2 table (offset 0x40000000, 65536 bytes) lies outside the file "
            "(262144 bytes)");
  EXPECT_EQ(L1(h, {kCopied | 512}), "qcow2 L1 table entry 0: qcow2 L2 table offset 0x200 is not aligned to a "
                                    "cluster (65536 bytes)");
  EXPECT_EQ(L1(h, {kCopied}), "ok");  // the copied flag alone: unallocated
  EXPECT_EQ(L1(h, {1}), "qcow2 L1 table entry 0 has reserved bits set (0x1)");
  EXPECT_EQ(L1(h, {kCluster}), "qcow2 L1 table entry 0: its L2 table at offset 0x10000 overlaps the refcount table");
  EXPECT_EQ(L1(h, {3 * kCluster}), "qcow2 L1 table entry 0: its L2 table at offset 0x30000 overlaps the L1 table");
}

TEST(Qcow2Tables, RefcountEntriesPointToBlocksInsideTheFile) {
  const Qcow2Header h = Good();
  auto check = [&](std::initializer_list<uint64_t> e) {
    Status s = h.CheckTableEntries(Qcow2Header::Table::kRefcount, Entries(e), kFile);
    return s.ok() ? "ok" : s.message();
  };
  EXPECT_EQ(check({2 * kCluster}), "ok");
  EXPECT_EQ(check({1ull << 62}),
            "qcow2 refcount table entry 0: qcow2 refcount block (offset 0x4000000000000000, 65536 bytes) lies "
            "outside the file (262144 bytes)");
  EXPECT_EQ(check({2 * kCluster | 8}), "qcow2 refcount table entry 0 has reserved bits set (0x20008)");
  EXPECT_EQ(check({0, 0, kCluster}),
            "qcow2 refcount table entry 2: its refcount block at offset 0x10000 overlaps the refcount table");
}

}  // namespace
}  // namespace regdisk::disk
