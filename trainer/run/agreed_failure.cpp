#include "trainer/run/agreed_failure.h"

#include <cstring>
#include <utility>
#include <vector>

#include "trainer/config/config.h"

namespace distgan {

namespace {

// Runs `work`; returns (exit code, message): (0, "") when it succeeded.
std::pair<int64_t, std::string> attempt(const std::function<void()>& work) {
  try {
    work();
  } catch (const ConfigError& e) {
    return {2, e.what()};
  } catch (const std::exception& e) {
    return {1, e.what()};
  }
  return {0, ""};
}

// `root`'s (code, message) to every rank; throws AgreedFailure everywhere when the code is not 0.
void agree_on(cluster::Communicator& comm, int root, int64_t code, const std::string& message) {
  torch::Tensor header = torch::tensor({code, static_cast<int64_t>(message.size())}, torch::kInt64);
  comm.broadcast(header, root);
  if (header[0].item<int64_t>() == 0) return;
  torch::Tensor text = torch::zeros({header[1].item<int64_t>()}, torch::kUInt8);
  if (comm.rank() == root) std::memcpy(text.data_ptr(), message.data(), message.size());
  comm.broadcast(text, root);
  throw AgreedFailure(std::string(static_cast<const char*>(text.data_ptr()), static_cast<size_t>(text.numel())),
                      static_cast<int>(header[0].item<int64_t>()), comm.rank() == root);
}

}  // namespace

void on_root_agreed(cluster::Communicator& comm, const std::function<void()>& work) {
  auto [code, message] = comm.rank() == 0 ? attempt(work) : std::pair<int64_t, std::string>{0, ""};
  agree_on(comm, 0, code, message);
}

void on_every_rank_agreed(cluster::Communicator& comm, const std::function<void()>& work) {
  auto [code, message] = attempt(work);
  const std::vector<double> failed = comm.allgather(std::vector<double>{code != 0 ? 1.0 : 0.0});
  for (int r = 0; r < comm.size(); ++r) {
    if (failed[static_cast<size_t>(r)] == 0) continue;
    agree_on(comm, r, code, r == 0 ? message : "rank " + std::to_string(r) + ": " + message);
    return;
  }
}

}  // namespace distgan
