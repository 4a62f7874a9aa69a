// A scripted stand-in for NCCL and the few CUDA runtime calls the NCCL backend makes, so that the
// backend's start-up and shutdown (non-blocking init polled under the deadline, finalize then
// destroy, abort after a failure) run on a machine without a GPU. Linked instead of libnccl and
// libcudart into tests/nccl_fake_test.cpp only (never with a CUDA LibTorch, whose own CUDA calls
// would reach these).
#pragma once

#include <nccl.h>

#include <string>
#include <vector>

namespace fake_nccl {

struct Script {
  ncclResult_t init_returns = ncclInProgress;  // what ncclCommInitRankConfig returns
  int init_polls = 0;                          // ncclCommGetAsyncError says ncclInProgress this often
  bool init_hangs = false;                     // ... or forever (a peer that never joins)
  int finalize_polls = 0;                      // the same for ncclCommFinalize
  bool finalize_hangs = false;
  std::string last_error = "fake: connection to rank 1 closed";
};

// What the backend did, in order: "init(blocking=0)", "poll", "finalize", "destroy", "abort".
struct Record {
  std::vector<std::string> calls;
  int count(const std::string& call) const;
  // Index of the first `call` in calls, or -1.
  int first(const std::string& call) const;
};

// Resets both (before each test).
void reset(const Script& script);
Record& record();

}  // namespace fake_nccl
