#include "trainer/state/module_tensors.h"

#include <set>

#include "data/data_error.h"

namespace distgan {

torch::Tensor host_copy(const torch::Tensor& t) { return t.detach().to(torch::kCPU).contiguous().clone(); }

void add_module_tensors(const std::string& prefix, torch::nn::Module& module, TensorFileData& out) {
  for (const auto& p : module.named_parameters()) out.tensors.emplace_back(prefix + p.key(), host_copy(p.value()));
  for (const auto& b : module.named_buffers()) out.tensors.emplace_back(prefix + b.key(), host_copy(b.value()));
}

void load_module_tensors(TensorFileReader& reader, const std::string& prefix, torch::nn::Module& module,
                         const std::function<bool(const std::string&)>& may_be_missing) {
  torch::NoGradGuard no_grad;
  std::set<std::string> expected;
  auto load = [&](const std::string& name, torch::Tensor& target) {
    const std::string full = prefix + name;
    expected.insert(full);
    if (!reader.has_tensor(full) && may_be_missing && may_be_missing(name)) return;
    target.copy_(reader.read(full, target.scalar_type(), target.sizes().vec()));
  };
  for (auto& p : module.named_parameters()) load(p.key(), p.value());
  for (auto& b : module.named_buffers()) load(b.key(), b.value());
  for (const auto& name : reader.tensor_names(prefix))
    if (!expected.count(name))
      throw data::DataError(reader.path() + ": " + name + " is not part of this run's model: the file does not match");
}

}  // namespace distgan
