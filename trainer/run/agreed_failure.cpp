#include "trainer/run/agreed_failure.h"

#include <cstring>

#include "trainer/config/config.h"

namespace distgan {

void on_root_agreed(cluster::Communicator& comm, const std::function<void()>& work) {
  std::string message;
  int64_t code = 0;
  if (comm.rank() == 0) {
    try {
      work();
    } catch (const ConfigError& e) {
      message = e.what(), code = 2;
    } catch (const std::exception& e) {
      message = e.what(), code = 1;
    }
  }
  torch::Tensor header = torch::tensor({code, static_cast<int64_t>(message.size())}, torch::kInt64);
  comm.broadcast(header, 0);
  if (header[0].item<int64_t>() == 0) return;
  torch::Tensor text = torch::zeros({header[1].item<int64_t>()}, torch::kUInt8);
  if (comm.rank() == 0) std::memcpy(text.data_ptr(), message.data(), message.size());
  comm.broadcast(text, 0);
  throw AgreedFailure(std::string(static_cast<const char*>(text.data_ptr()), static_cast<size_t>(text.numel())),
                      static_cast<int>(header[0].item<int64_t>()), comm.rank() == 0);
}

}  // namespace distgan
