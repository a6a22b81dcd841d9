// The serving process of a lazy cache entry ROOT/disks/KEY/: nbdkit with
// regdisk's plugin (regdisk-nbd.so), serving the entry's disk read-only on
// the unix socket ROOT/disks/KEY/nbd.sock. It runs in its own session, so
// it outlives the CLI that started it and a libvirtd restart; it never
// exits by itself: StopServer ends it (release of the last lease of a
// complete entry, gc, tests).
//
//   ROOT/disks/KEY/nbd.sock   the export's socket (mode 0666: libvirt's qemu,
//                             UID 107 on a node, connects; the disk itself is
//                             0444 once complete, so this gives nothing more)
//   ROOT/disks/KEY/nbd.pid    the server's pid
//   ROOT/disks/KEY/nbd.log    its stderr (nbdkit --log=stderr), appended
//
// No libvirt here. The callers hold the key's lock, so two callers never
// start or stop one entry's server at once.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace regdisk::cache {

// A server start waits this long for the socket to accept: nbdkit loads
// the plugin, which re-hashes the index (at most 128 MiB) before serving;
// a few seconds on a loaded node.
inline constexpr int kServerStartSeconds = 30;
// A stop waits this long after SIGTERM before SIGKILL: nbdkit finishes the
// requests in flight (a chunk read from the registry has its own timeouts).
inline constexpr int kServerStopSeconds = 10;
// sockaddr_un's sun_path holds 107 bytes and a NUL: a longer ROOT cannot
// serve lazily (ROOT/disks/KEY/nbd.sock adds 65 bytes to ROOT).
inline constexpr size_t kMaxSocketPath = 107;

// What runs as the server of an entry: `nbdkit ... PLUGIN ARGS...`.
struct ServerCommand {
  std::string nbdkit = "nbdkit";
  std::string plugin;             // path of regdisk-nbd.so (or an nbdkit plugin name in tests)
  std::vector<std::string> args;  // the plugin's key=value parameters
};

// regdisk's plugin for entry KEY: `PLUGIN root=ROOT key=KEY`, where PLUGIN
// is $REGDISK_NBD_PLUGIN, else regdisk-nbd.so beside the running executable,
// else the build tree's (REGDISK_NBD_PLUGIN_BUILD_PATH).
ServerCommand PluginCommand(const std::string& root, const std::string& key);

std::string ServerSocket(const std::string& entry_dir);

// Starts the server of the entry `entry_dir` unless one is running and
// accepting on its socket; a dead or hung one (pid gone, socket not
// accepting) is stopped and replaced. Returns when the socket accepts, or
// fails after kServerStartSeconds with the server's last log line.
Status EnsureServer(const std::string& entry_dir, const ServerCommand& cmd);
// True when the entry's recorded server is alive.
bool ServerRunning(const std::string& entry_dir);
// Stops the entry's server (SIGTERM, SIGKILL after kServerStopSeconds) and
// removes its socket and pid file; nothing running is OK. Only a process
// whose command line serves this entry's socket is signalled, so a reused
// pid is never killed.
Status StopServer(const std::string& entry_dir);

}  // namespace regdisk::cache
