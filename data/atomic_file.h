// Writing a file so that a crash never leaves a half-written file under its final name: the
// content goes to a temporary name in the same directory, is flushed to disk, then renamed over the
// final name and the directory entry flushed too. Until commit() the temporary file is removed by
// the destructor, so an exception anywhere in between leaves nothing behind.
#pragma once

#include <string>

namespace distgan::data {

class AtomicOutput {
 public:
  // overwrite=false: commit() fails if final_path exists (checked again, atomically, at rename).
  AtomicOutput(std::string final_path, bool overwrite);
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;
  ~AtomicOutput();

  // The temporary name to write to.
  const std::string& temp_path() const { return temp_path_; }
  const std::string& final_path() const { return final_path_; }

  // fsync the temporary file, rename it to the final name, fsync the directory.
  void commit();

 private:
  std::string final_path_;
  std::string temp_path_;
  bool overwrite_;
  bool committed_ = false;
};

// Makes SIGINT and SIGTERM remove the temporary file of the AtomicOutput in progress (if any)
// before the process dies of the signal, so an interrupted command leaves nothing behind. For
// short-lived commands such as `distgan prep`; training handles signals itself.
void remove_temporary_on_signal();

}  // namespace distgan::data
