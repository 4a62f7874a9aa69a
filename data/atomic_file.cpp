#include "data/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <random>

#include "data/data_error.h"

namespace distgan::data {

namespace fs = std::filesystem;

namespace {

// The temporary file in progress, for the signal handler (which may only use async-signal-safe
// calls: unlink, signal, raise). One at a time is all the commands that use it need.
char g_active_temp[4096] = {0};
volatile sig_atomic_t g_has_active_temp = 0;

void set_active_temp(const std::string& path) {
  g_has_active_temp = 0;
  std::snprintf(g_active_temp, sizeof(g_active_temp), "%s", path.c_str());
  g_has_active_temp = path.size() < sizeof(g_active_temp) ? 1 : 0;
}

void clear_active_temp() { g_has_active_temp = 0; }

extern "C" void remove_temp_and_die(int signo) {
  if (g_has_active_temp) ::unlink(g_active_temp);
  ::signal(signo, SIG_DFL);
  ::raise(signo);
}

std::string errno_text() { return std::strerror(errno); }

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw DataError(path + ": cannot open to flush: " + errno_text());
  const int rc = ::fsync(fd);
  const std::string reason = errno_text();
  ::close(fd);
  if (rc != 0) throw DataError(path + ": fsync failed: " + reason);
}

std::string parent_dir(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

void remove_temporary_on_signal() {
  struct sigaction action {};
  action.sa_handler = remove_temp_and_die;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

AtomicOutput::AtomicOutput(std::string final_path, bool overwrite)
    : final_path_(std::move(final_path)), overwrite_(overwrite) {
  const std::string dir = parent_dir(final_path_);
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw DataError(final_path_ + ": the directory '" + dir + "' does not exist");
  if (!overwrite_ && fs::exists(final_path_, ec))
    throw DataError(final_path_ + ": file exists; refusing to overwrite it (pass --force to replace it)");
  // A hidden name beside the final one: same file system, so the rename is atomic.
  const fs::path p(final_path_);
  // pid and a random suffix: ranks or hosts sharing a file system never pick the same name.
  std::random_device random;
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), "%d.%08x", static_cast<int>(::getpid()), random());
  temp_path_ = (p.parent_path() / ("." + p.filename().string() + ".tmp." + suffix)).string();
  set_active_temp(temp_path_);
}

AtomicOutput::~AtomicOutput() {
  clear_active_temp();
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_path_, ec);
  }
}

void AtomicOutput::commit() {
  fsync_path(temp_path_, O_RDONLY);
  int rc;
  if (overwrite_) {
    rc = ::rename(temp_path_.c_str(), final_path_.c_str());
  } else {
    // RENAME_NOREPLACE: a file that appeared since the constructor's check is still not replaced.
    rc = ::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, final_path_.c_str(), RENAME_NOREPLACE);
    if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
      // NFS and some parallel file systems lack RENAME_NOREPLACE; link() also refuses to replace.
      rc = ::link(temp_path_.c_str(), final_path_.c_str());
      if (rc == 0) ::unlink(temp_path_.c_str());
    }
  }
  if (rc != 0) {
    const std::string reason =
        errno == EEXIST ? "file exists; refusing to overwrite it (pass --force to replace it)" : errno_text();
    throw DataError(final_path_ + ": cannot move the finished file into place: " + reason);
  }
  committed_ = true;
  clear_active_temp();
  fsync_path(parent_dir(final_path_), O_RDONLY | O_DIRECTORY);
}

}  // namespace distgan::data
