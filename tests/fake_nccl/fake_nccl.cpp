#include "tests/fake_nccl/fake_nccl.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

namespace fake_nccl {
namespace {

Script current;
Record recorded;
int polls_left = 0;
bool hanging = false;
int device = 0;
char comm_storage[8];  // what the fake communicator handle points at
int handles[2];        // the stream and the events: non-null pointers

}  // namespace

int Record::count(const std::string& call) const {
  return static_cast<int>(std::count(calls.begin(), calls.end(), call));
}

int Record::first(const std::string& call) const {
  const auto it = std::find(calls.begin(), calls.end(), call);
  return it == calls.end() ? -1 : static_cast<int>(it - calls.begin());
}

void reset(const Script& script) {
  current = script;
  recorded = {};
  polls_left = 0;
  hanging = false;
}

Record& record() { return recorded; }

}  // namespace fake_nccl

using namespace fake_nccl;

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  std::memset(id, 7, sizeof(*id));
  return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int, ncclUniqueId, int, ncclConfig_t* config) {
  recorded.calls.push_back("init(blocking=" + std::to_string(config->blocking) + ")");
  *comm = current.init_returns == ncclSuccess || current.init_returns == ncclInProgress
              ? reinterpret_cast<ncclComm_t>(comm_storage)
              : nullptr;  // NCCL's own behaviour on an immediate failure
  polls_left = current.init_polls;
  hanging = current.init_hangs;
  return current.init_returns;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t* state) {
  recorded.calls.push_back("poll");
  if (hanging || polls_left > 0) {
    if (polls_left > 0) --polls_left;
    *state = ncclInProgress;
  } else {
    *state = ncclSuccess;
  }
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t) {
  recorded.calls.push_back("finalize");
  polls_left = current.finalize_polls;
  hanging = current.finalize_hangs;
  return ncclInProgress;
}

ncclResult_t ncclCommDestroy(ncclComm_t) {
  recorded.calls.push_back("destroy");
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t) {
  recorded.calls.push_back("abort");
  hanging = false;
  return ncclSuccess;
}

const char* ncclGetLastError(ncclComm_t) { return current.last_error.c_str(); }

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclSystemError:
      return "unhandled system error";
    case ncclRemoteError:
      return "remote process exited or there was a network error";
    case ncclInProgress:
      return "NCCL operation in progress";
    default:
      return "fake NCCL error";
  }
}

// Collectives are never reached by these tests (they need CUDA tensors); present for the linker.
ncclResult_t ncclAllReduce(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) {
  return ncclInvalidUsage;
}
ncclResult_t ncclBroadcast(const void*, void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) {
  return ncclInvalidUsage;
}
ncclResult_t ncclAllGather(const void*, void*, size_t, ncclDataType_t, ncclComm_t, cudaStream_t) {
  return ncclInvalidUsage;
}

cudaError_t cudaSetDevice(int d) {
  device = d;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = device;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  *stream = reinterpret_cast<cudaStream_t>(&handles[0]);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  *event = reinterpret_cast<cudaEvent_t>(&handles[1]);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }
const char* cudaGetErrorString(cudaError_t) { return "fake CUDA error"; }

}  // extern "C"
